// Live machines list: follows /ws/telemetry/ for the listed nodes and updates each row's last
// point, temperature, power and vibration; tells site_power.js a reading arrived.
(function () {
  "use strict";
  const source = document.getElementById("site-power-nodes");
  const state = document.getElementById("live-state");
  if (!source) return;
  const nodes = JSON.parse(source.textContent);
  if (!nodes.length) return;
  const pad = (n) => String(n).padStart(2, "0");
  function utc(time) {
    const d = new Date(time);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }
  function update(point) {
    const row = document.querySelector(`tr[data-node="${point.node}"]`);
    if (!row) return;
    for (const cell of row.querySelectorAll("td[data-cell]")) {
      const key = cell.dataset.cell;
      if (key === "time") cell.textContent = utc(point.time);
      else if (point[key] !== undefined && point[key] !== null) {
        cell.textContent = Number(point[key]).toFixed(Number(cell.dataset.digits || 2));
      }
    }
    if (state) state.textContent = "Live: rows update as readings arrive.";
    document.dispatchEvent(new CustomEvent("telemetry:point", {detail: point}));
  }

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/telemetry/?nodes=${nodes.join(",")}`);
    ws.onopen = () => { delay = 1000; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "telemetry") update(msg);
    };
    ws.onclose = (event) => {
      if (event.code === 4403 || event.code === 4400) {
        if (state) state.textContent = "Live updates stopped; reload the page.";
        return;
      }
      if (state) state.textContent = "Live updates paused; reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
