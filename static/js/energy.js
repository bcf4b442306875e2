// Energy pages (progressive enhancement: every figure is also in a table or the totals).
// Draws the charts whose specs the page embeds: <canvas data-energy-chart="<json_script id>">.
// A spec: {type: "bar" | "line" | "doughnut", labels, stacked?, axes?: {y, y1},
//          series: [{label, data, type?, axis?: "y1", dash?, colour?, colours?, stack?}]}
// (a stacked bar series with its own `stack` stands beside the others, not on them).
(function () {
  "use strict";

  const PALETTE = ["#2471a3", "#c0392b", "#b7950b", "#1e8449", "#7d3c98"];

  function dataset(spec, s, index) {
    const colour = s.colour || PALETTE[index % PALETTE.length];
    if (spec.type === "doughnut") {
      return {label: s.label, data: s.data, backgroundColor: s.colours || PALETTE};
    }
    const type = s.type || spec.type;
    return {
      type,
      label: s.label,
      data: s.data,
      borderColor: colour,
      backgroundColor: colour,
      borderDash: s.dash ? [6, 4] : [],
      borderWidth: type === "bar" ? 0 : 2,
      pointRadius: type === "line" ? 0 : undefined,
      yAxisID: s.axis || "y",
      stack: type === "bar" && spec.stacked ? s.stack || "kwh" : undefined,
      order: type === "line" ? 0 : 1,
    };
  }

  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.energyChart);
    if (!source || typeof Chart === "undefined") return;
    const spec = JSON.parse(source.textContent);
    const datasets = spec.series.map((s, i) => dataset(spec, s, i));
    // on a phone a wide chart would be a strip a few pixels high: taller there
    const narrow = canvas.parentElement.clientWidth < 560;
    const options = {animation: false, responsive: true, aspectRatio: narrow ? 1.3 : canvas.width / canvas.height};
    if (spec.type === "doughnut") {
      // a narrow column of its own (energy-charts in imewe.css); the legend beside the ring
      Object.assign(options, {aspectRatio: narrow ? 1.2 : 1.6, plugins: {legend: {position: narrow ? "bottom" : "right"}}});
    }
    if (spec.type !== "doughnut") {
      const axes = spec.axes || {};
      options.interaction = {mode: "index", intersect: false};
      options.scales = {
        x: {stacked: Boolean(spec.stacked), ticks: {maxTicksLimit: 12}},
        y: {position: "left", stacked: Boolean(spec.stacked), beginAtZero: true,
            title: {display: Boolean(axes.y), text: axes.y}},
      };
      if (spec.series.some((s) => s.axis === "y1")) {
        options.scales.y1 = {position: "right", beginAtZero: true, grid: {drawOnChartArea: false},
                             title: {display: Boolean(axes.y1), text: axes.y1}};
      }
    }
    new Chart(canvas, {type: spec.type, data: {labels: spec.labels, datasets}, options});
  }

  document.querySelectorAll("canvas[data-energy-chart]").forEach(draw);
})();
