// A simulation's page: progress while it runs (polled from the API), then its charts. Ageing:
// timeline slider with play/pause over the horizon, wear and failure probability with the
// Monte Carlo band, the failure date, the 3D view coloured by wear at the chosen time.

const script = document.getElementById("sim-script");
const twinId = script.dataset.twin, simId = script.dataset.simulation;
const started = new Date(script.dataset.started);
const api = `/api/v1/twins/${twinId}/simulations/${simId}/`;
const COLOURS = { normal: "#0b6e4f", heavy_load: "#4363d8", overheated: "#c0392b", worn_bearings: "#e67e22" };
const HOURS_PER_YEAR = 8760;

const $ = (id) => document.getElementById(id);
const dateAt = (hours) => new Date(started.getTime() + hours * 3600 * 1000);
const fmtDate = (d) => d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
const fmtHours = (h) => (h === null || h === undefined ? "—" : h >= 2 * HOURS_PER_YEAR ? `${(h / HOURS_PER_YEAR).toFixed(1)} years` : `${Math.round(h).toLocaleString()} h`);

async function poll() {
  let delay = 600;
  for (;;) {
    const response = await fetch(api, { headers: { Accept: "application/json" } });
    if (!response.ok) { $("sim-stage").textContent = `Could not read the simulation (HTTP ${response.status}).`; return; }
    const sim = await response.json();
    const pct = Math.round(sim.progress * 100);
    $("sim-progress").value = pct; $("sim-percent").textContent = `${pct}%`;
    $("sim-status").textContent = sim.status[0].toUpperCase() + sim.status.slice(1);
    $("sim-status").className = `status status-${sim.status}`;
    $("sim-stage").textContent = sim.stage;
    if (sim.status === "failed") { $("sim-error").textContent = sim.error; $("sim-error").hidden = false; return; }
    if (sim.status === "succeeded") { $("progress-box").hidden = true; $("result").hidden = false; render(sim); return; }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(3000, delay * 1.3);
  }
}

// Chart.js plugin of ours: a vertical line at the chosen time.
const marker = {
  id: "marker",
  afterDatasetsDraw(chart, _args, options) {
    if (options.x === undefined || options.x === null) return;
    const x = chart.scales.x.getPixelForValue(options.x);
    const { top, bottom } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save(); ctx.strokeStyle = "#333"; ctx.setLineDash([4, 3]); ctx.beginPath();
    ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke(); ctx.restore();
  },
};

function render(sim) {
  if (sim.kind === "ageing") renderAgeing(sim.result); else renderScenarios(sim.result);
}

async function renderAgeing(result) {
  const points = result.trajectory;
  const band = (result.uncertainty && result.uncertainty.band) || [];
  const u = result.uncertainty || {};
  const failure = result.predicted_failure_hours;
  $("failure-headline").textContent = failure === null
    ? `No failure predicted within ${fmtHours(result.conditions.horizon_h)}`
    : `Predicted failure: ${fmtDate(dateAt(failure))} (after ${fmtHours(failure)})`;
  const range = u.failure_hours_p10 !== null && u.failure_hours_p10 !== undefined
    ? ` Likely between ${fmtDate(dateAt(u.failure_hours_p10))} and ${u.failure_hours_p90 !== null ? fmtDate(dateAt(u.failure_hours_p90)) : "beyond the horizon"} (10th–90th percentile of ${u.samples} samples).`
    : "";
  $("failure-detail").textContent = `When the failure probability reaches ${result.threshold}.${range} Factors: Arrhenius ×${result.factors.arrhenius}, load-life ×${result.factors.load_life}, stress range ${result.factors.stress_range_mpa} MPa.`;
  $("constants-source").textContent = `Constants: ${result.constants.source}.`;
  const tbody = document.querySelector("#heatmap tbody");
  for (const zone of result.heatmap) {
    const tr = document.createElement("tr");
    const hue = Math.round(120 * (1 - zone.relative));
    tr.innerHTML = `<td></td><td></td><td><span class="heat"></span> ${zone.relative}</td>`;
    Object.assign(tr.querySelector(".heat").style, {  // CSSOM: the CSP forbids style attributes
      display: "inline-block", width: `${Math.round(zone.relative * 100)}%`, minWidth: "4px",
      height: ".8rem", background: `hsl(${hue} 70% 45%)`,
    });
    tr.children[0].textContent = zone.zone; tr.children[1].textContent = zone.stress_mpa;
    tbody.append(tr);
  }
  const years = (h) => h / HOURS_PER_YEAR;
  const chart = new Chart($("chart-wear"), {
    type: "line",
    data: {
      datasets: [
        { label: "Wear (%)", data: points.map((p) => ({ x: years(p.time_hours), y: p.wear_percent })), borderColor: "#a15c00", yAxisID: "wear", pointRadius: 0 },
        { label: "Failure probability", data: points.map((p) => ({ x: years(p.time_hours), y: p.failure_probability })), borderColor: "#c0392b", yAxisID: "p", pointRadius: 0 },
        { label: "90th percentile", data: band.map((p) => ({ x: years(p.time_hours), y: p.p90 })), borderColor: "rgba(192,57,43,.25)", backgroundColor: "rgba(192,57,43,.12)", fill: "+1", yAxisID: "p", pointRadius: 0, borderWidth: 1 },
        { label: "10th percentile", data: band.map((p) => ({ x: years(p.time_hours), y: p.p10 })), borderColor: "rgba(192,57,43,.25)", yAxisID: "p", pointRadius: 0, borderWidth: 1 },
      ],
    },
    options: {
      animation: false, parsing: true, interaction: { mode: "index", intersect: false },
      scales: {
        x: { type: "linear", title: { display: true, text: "years" }, min: 0, max: years(result.conditions.horizon_h) },
        wear: { position: "left", min: 0, max: 100, title: { display: true, text: "wear %" } },
        p: { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false }, title: { display: true, text: "failure probability" } },
      },
      plugins: { marker: { x: 0 } },
    },
    plugins: [marker],
  });
  let view = null;
  try { const { mountTwinView } = await import("./twin_view3d.js"); view = mountTwinView($("view3d"), { twinType: script.dataset.type, modelUrl: null, modelFormat: "", onPick: () => {} }); view.setZones(result.heatmap); }
  catch (err) { $("view3d").textContent = "The 3D view could not start."; }

  const slider = $("timeline");
  slider.max = points.length - 1;
  function show(i) {
    const p = points[i];
    const dl = $("at-time");
    dl.replaceChildren();
    const rows = [["Time", `${fmtHours(p.time_hours)} · ${fmtDate(dateAt(p.time_hours))}`], ["Wear", `${p.wear_percent.toFixed(1)} %`],
      ["Crack length", `${p.crack_length_mm.toFixed(3)} mm`], ["Failure probability", `${(p.failure_probability * 100).toFixed(1)} %`]];
    for (const [k, v] of rows) { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; dl.append(dt, dd); }
    slider.setAttribute("aria-valuetext", `${fmtHours(p.time_hours)}, wear ${p.wear_percent.toFixed(0)} percent`);
    chart.options.plugins.marker.x = years(p.time_hours); chart.update("none");
    if (view) view.setWear(p.wear_percent);
  }
  slider.addEventListener("input", () => show(Number(slider.value)));
  let timer = null;
  const play = $("play");
  play.addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "▶ Play"; play.setAttribute("aria-label", "Play"); return; }
    if (Number(slider.value) >= points.length - 1) slider.value = 0;
    play.textContent = "⏸ Pause"; play.setAttribute("aria-label", "Pause");
    timer = setInterval(() => {
      const next = Number(slider.value) + 1;
      if (next > points.length - 1) { play.click(); return; }
      slider.value = next; show(next);
    }, 60);
  });
  show(0);
}

function renderScenarios(result) {
  $("seed-source").textContent = `Machine: ${result.machine_label || result.machine_kind.replaceAll("_", " ")} · ${result.hours} h · started from ${result.seed_source}.`;
  $("seed-window").textContent = result.seed_window ? result.seed_window.summary : "";
  const tbody = document.querySelector("#scenario-summary tbody");
  for (const row of result.summary) {
    const tr = document.createElement("tr");
    for (const v of [row.label, row.health_score_end.toFixed(1), row.rul_hours === null ? "beyond 100,000 h" : fmtHours(row.rul_hours), fmtHours(row.vibration_unacceptable_hours), fmtHours(row.over_temperature_hours)]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    tbody.append(tr);
  }
  // what drives each result, worded by the server (apps/twins/physics.py); older runs have none
  const why = $("scenario-why");
  const note = $("scenario-comparison");
  if (note && result.comparison_note) { note.textContent = result.comparison_note; note.hidden = false; }
  if (why) {
    for (const row of result.summary) {
      if (!row.explanation || !row.explanation.length) continue;
      const li = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = `${row.label}: `;
      li.append(strong, row.explanation.join(" "));
      why.append(li);
    }
    why.closest("details").hidden = !why.children.length;
  }
  const chart = (canvas, field, title) => new Chart($(canvas), {
    type: "line",
    data: { datasets: Object.entries(result.scenarios).map(([name, run]) => ({
      label: run.label, borderColor: COLOURS[name] || "#555", pointRadius: 0,
      data: run.series.map((p) => ({ x: p.time_hours, y: p[field] })),
    })) },
    options: { animation: false, scales: { x: { type: "linear", title: { display: true, text: "hours" } }, y: { title: { display: true, text: title } } } },
  });
  chart("chart-health", "health_score", "health score");
  chart("chart-temperature", "temperature_c", "temperature °C");
  chart("chart-vibration", "vibration_mm_s", "vibration mm/s");
  chart("chart-bearing", "bearing_wear_percent", "bearing wear %");
}

poll();
