// Job page: follows /ws/jobs/<id>/. Progress moves the bar in place; every other event (a status
// change, a part moved to another node, a panel's figures recorded) re-fetches the page's
// changing panels, rendered by the server as on a reload, and swaps each in by id.
(function () {
  "use strict";
  const jobId = JSON.parse(document.getElementById("job-id").textContent);
  const panelsUrl = document.getElementById("job-live").dataset.panelsUrl;
  const state = document.getElementById("live-state");
  const FINAL = ["completed", "failed", "cancelled"];
  let finished = false;
  // the latest progress each part reported live: a panel fetched before that report arrived
  // must not wind the bar back (a moved part starts again from 0: its entry is dropped)
  const progress = new Map();

  function row(partId) { return document.querySelector(`#parts tr[data-part="${partId}"]`); }
  function setProgress(partId, value) {
    const r = row(partId);
    if (!r) return;
    r.querySelector('[data-field="progress"]').value = value;
    r.querySelector('[data-field="progress-text"]').textContent = Math.round(value) + "%";
  }

  // Swaps each panel of the fragment for the page's element of the same id. A panel with a
  // data-live-key (the actions, which hold forms being typed in) is swapped only when its key
  // changed; the placement explanations keep the parts the reader opened.
  function swap(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const panel of fresh.querySelectorAll("[data-live-panel]")) {
      const current = document.getElementById(panel.id);
      if (!current) continue;
      if (panel.dataset.liveKey !== undefined && panel.dataset.liveKey === current.dataset.liveKey) continue;
      const opened = new Set([...current.querySelectorAll("details[data-part]")].map((d) => d.dataset.part));
      if (opened.size) {
        for (const d of panel.querySelectorAll("details[data-part]")) d.open = opened.has(d.dataset.part);
      }
      current.replaceWith(document.importNode(panel, true));
    }
    for (const [partId, value] of progress) {
      const r = row(partId);
      if (r && Number(r.querySelector('[data-field="progress"]').value) < value) setProgress(partId, value);
    }
  }

  // One fetch at a time; events arriving meanwhile cause one more fetch after it, so the page
  // always ends on the state after the last event.
  let fetching = false;
  let again = false;
  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      do {
        again = false;
        const response = await fetch(panelsUrl, {credentials: "same-origin", cache: "no-store",
          headers: {"Accept": "text/html"}});
        if (response.status === 404 || response.status === 403) {
          state.textContent = "no longer allowed to see this job";
          return;
        }
        if (!response.ok || response.redirected) { state.textContent = "could not update; reload the page"; return; }
        swap(await response.text());
      } while (again);
    } catch (err) {
      state.textContent = "could not update; reload the page";
    } finally {
      fetching = false;
    }
  }

  function handle(msg) {
    if (msg.type === "part.progress") {
      progress.set(String(msg.part), Math.max(progress.get(String(msg.part)) || 0, msg.progress));
      setProgress(msg.part, msg.progress);
      return;
    }
    if (msg.type === "part.rescheduled") progress.delete(String(msg.part));
    if (msg.type === "job.status" && FINAL.includes(msg.to)) finished = true;
    if (msg.type === "snapshot") finished = FINAL.includes(msg.status);
    if (msg.type === "part.rescheduled") state.textContent = "a part is being moved: " + msg.reason;
    else if (["snapshot", "job.status", "part.status", "job.panel"].includes(msg.type)) {
      state.textContent = finished ? "finished" : "live";
    }
    // the snapshot too: events may have been missed between the page's render (or a dropped
    // socket) and this connection
    if (["snapshot", "job.status", "part.status", "part.rescheduled", "job.panel"].includes(msg.type)) refresh();
  }

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}/`);
    ws.onopen = () => { state.textContent = "live"; delay = 1000; };
    ws.onmessage = (event) => handle(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) { state.textContent = "not allowed to follow this job live"; return; }
      state.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
