// Prepends new audit entries to the audit log table as they happen (/ws/audit/).
(function () {
  "use strict";
  const body = document.querySelector("#audit-table tbody");
  const status = document.getElementById("audit-live");
  if (!body || !status) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/audit/`);
  ws.onopen = () => { status.textContent = "Live: new events appear at the top."; };
  ws.onclose = () => { status.textContent = "Live updates paused; reload to resume."; };
  ws.onmessage = (event) => {
    const e = JSON.parse(event.data);
    if (e.type !== "audit") return;
    const row = document.createElement("tr");
    const cells = [e.created_at.replace("T", " ").slice(0, 19), e.actor_email || "—",
      e.action_label || e.action, `${e.object_label || e.object_type} ${e.object_repr}`, "",
      e.ip_address || ""];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    row.className = "fresh";
    body.prepend(row);
  };
})();
