// The twin page's "<node> now" panel: follows /ws/telemetry/ for the twin's node and updates
// its readings (progressive enhancement: the server renders the newest ones).
(function () {
  "use strict";
  const panel = document.getElementById("node-now");
  if (!panel || !panel.dataset.node) return;
  const state = document.getElementById("readings-state");
  let delay = 1000;

  function show(point) {
    for (const cell of panel.querySelectorAll("td[data-signal]")) {
      const value = point[cell.dataset.signal];
      if (value !== undefined && value !== null) cell.textContent = Number(value).toFixed(2);
    }
    if (state) state.textContent = "live · last reading " + new Date(point.time).toLocaleTimeString();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/telemetry/?nodes=${panel.dataset.node}`);
    ws.onopen = () => { delay = 1000; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "telemetry") show(msg);
    };
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
