// Live pages: the sites of the watched nodes against their power caps (#site-power). Fetched
// again as readings arrive (a "telemetry:point" event from node_live.js or watch_list.js), at
// most every 2 s, from /nodes/site-power/ (the same check the page was rendered with).
(function () {
  "use strict";
  const box = document.getElementById("site-power");
  const source = document.getElementById("site-power-nodes");
  if (!box || !source) return;
  const nodes = JSON.parse(source.textContent);
  if (!nodes.length) return;
  const EVERY_MS = 2000;
  let last = 0;
  let timer = null;

  function draw(sites) {
    box.replaceChildren();
    const over = new Set();
    for (const s of sites) {
      const p = document.createElement("p");
      p.className = "flash " + (s.over_cap ? "flash-error" : "flash-success");
      p.dataset.site = s.site;
      p.dataset.overCap = String(s.over_cap);
      if (s.over_cap) {
        const strong = document.createElement("strong");
        strong.textContent = "Over the power cap. ";
        p.append(strong);
        s.node_ids.forEach((id) => over.add(String(id)));
      }
      p.append(s.text + " ");
      const small = document.createElement("small");
      small.textContent = `(${s.reporting} of ${s.nodes} node${s.nodes === 1 ? "" : "s"} at the site reporting)`;
      p.append(small);
      box.append(p);
    }
    box.hidden = sites.length === 0;
    document.querySelectorAll("tr[data-node]").forEach((row) => {
      const flag = row.querySelector("[data-cap-flag]");
      if (flag) flag.hidden = !over.has(row.dataset.node);
    });
  }

  function refresh() {
    timer = null;
    last = Date.now();
    fetch(`/nodes/site-power/?nodes=${nodes.join(",")}`, {credentials: "same-origin"})
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((body) => draw(body.sites))
      .catch(() => {});  // the flags stay as they were; the next reading tries again
  }

  document.addEventListener("telemetry:point", () => {
    if (timer) return;
    timer = setTimeout(refresh, Math.max(0, EVERY_MS - (Date.now() - last)));
  });
})();
