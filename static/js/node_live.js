// Live node page: loads the last hour from the API, then follows /ws/telemetry/.
(function () {
  "use strict";
  const nodeId = JSON.parse(document.getElementById("node-id").textContent);
  const state = document.getElementById("live-state");
  const series = {temperature_c: "Temperature (°C)", power_kw: "Power (kW)", vibration_mm_s: "Vibration (mm/s)"};
  const colours = ["#c0392b", "#2471a3", "#b7950b"];
  const chart = new Chart(document.getElementById("chart"), {
    type: "line",
    data: {labels: [], datasets: Object.entries(series).map(([key, label], i) => ({
      key, label, data: [], borderColor: colours[i], pointRadius: 0, borderWidth: 1.5, yAxisID: i === 0 ? "y" : "y1"}))},
    // taller than wide on a phone: at the canvas's own 3:1 its axes overlapped at 390 px
    options: {animation: false, responsive: true, aspectRatio: window.innerWidth < 600 ? 1.2 : 3,
      interaction: {mode: "index", intersect: false},
      scales: {x: {ticks: {maxTicksLimit: 8}},
        y: {position: "left", title: {display: true, text: "Temperature (°C)"}},
        y1: {position: "right", beginAtZero: true, grid: {drawOnChartArea: false},
          title: {display: true, text: "Power (kW), vibration (mm/s)"}}}},
  });
  // shown while the last hour holds no reading, hidden by the first one
  const empty = document.getElementById("chart-empty");
  function showEmpty(on) { if (empty) empty.hidden = !on; }

  function label(time) { return new Date(time).toLocaleTimeString(); }
  function setCurrent(point) {
    for (const cell of document.querySelectorAll("#current td[data-signal]")) {
      const value = point[cell.dataset.signal];
      if (value !== undefined && value !== null) cell.textContent = Number(value).toFixed(2);
    }
    state.textContent = "live · last point " + new Date(point.time).toLocaleTimeString();
  }
  function push(point) {
    showEmpty(false);
    chart.data.labels.push(label(point.time));
    for (const ds of chart.data.datasets) ds.data.push(point[ds.key] ?? null);
    const cutoff = 3600 / 0.25;  // keep at most an hour at the fastest rate
    if (chart.data.labels.length > cutoff) {
      chart.data.labels.shift();
      for (const ds of chart.data.datasets) ds.data.shift();
    }
  }

  // live points that arrive before the history are held, then drawn after it (in time order)
  let early = [];
  let newest = 0;
  function draw(point) {
    const at = Date.parse(point.time);
    if (at <= newest) return;
    newest = at;
    push(point);
  }
  fetch(`/api/v1/telemetry/nodes/${nodeId}/points/?max_points=600`, {credentials: "same-origin"})
    .then((r) => r.ok ? r.json() : Promise.reject(r.status))
    .then((body) => {
      body.points.forEach(draw);
      if (body.points.length) setCurrent(body.points[body.points.length - 1]);
      else if (!early.length) showEmpty(true);
    })
    .catch(() => { state.textContent = "history unavailable"; })
    .finally(() => {
      early.forEach(draw);
      if (early.length) setCurrent(early[early.length - 1]);
      early = null;
      chart.update();
    });

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/telemetry/?nodes=${nodeId}`);
    ws.onopen = () => { delay = 1000; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type !== "telemetry") return;
      if (early) { early.push(msg); return; }
      draw(msg); setCurrent(msg); chart.update("none");
      document.dispatchEvent(new CustomEvent("telemetry:point", {detail: msg}));
    };
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) { state.textContent = "live updates not allowed"; return; }
      state.textContent = "reconnecting…";
      setTimeout(connect, delay); delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
