// Job page: follows /ws/jobs/<id>/ and updates part status and progress in place.
(function () {
  "use strict";
  const jobId = JSON.parse(document.getElementById("job-id").textContent);
  const state = document.getElementById("live-state");
  const labels = {submitted: "Submitted", validated: "Validated", scheduled: "Scheduled", assigned: "Assigned",
    in_progress: "In progress", completed: "Completed", failed: "Failed", cancelled: "Cancelled"};
  function setStatus(el, status) {
    el.textContent = labels[status] || status;
    el.className = "status status-" + status;
  }
  function row(partId) { return document.querySelector(`#parts tr[data-part="${partId}"]`); }
  function setProgress(partId, value) {
    const r = row(partId);
    if (!r) return;
    r.querySelector('[data-field="progress"]').value = value;
    r.querySelector('[data-field="progress-text"]').textContent = Math.round(value) + "%";
  }
  function handle(msg) {
    if (msg.type === "snapshot") {
      setStatus(document.getElementById("job-status"), msg.status);
      for (const p of msg.parts) {
        const r = row(p.id);
        if (r) { setStatus(r.querySelector('[data-field="status"]'), p.status); setProgress(p.id, p.progress_pct); }
      }
    } else if (msg.type === "job.status") {
      setStatus(document.getElementById("job-status"), msg.to);
      if (["completed", "failed", "cancelled"].includes(msg.to)) state.textContent = "finished";
    } else if (msg.type === "part.status") {
      const r = row(msg.part);
      if (r) setStatus(r.querySelector('[data-field="status"]'), msg.to);
      if (msg.to === "completed") setProgress(msg.part, 100);
    } else if (msg.type === "part.progress") {
      setProgress(msg.part, msg.progress);
    } else if (msg.type === "part.rescheduled") {
      state.textContent = "a part is being moved: " + msg.reason;
    }
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
