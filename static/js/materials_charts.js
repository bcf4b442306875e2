// Materials pages: draws the stock-history charts whose data the page embeds
// (<canvas data-materials-chart="<json_script id>">). The page works without it: the ledger
// table below the chart has every change.
(function () {
  "use strict";
  const PALETTE = ["#2471a3", "#c0392b"];

  function timeLabel(ms) {
    return new Date(ms).toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  }

  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.materialsChart);
    if (!source || typeof Chart === "undefined") return;
    const spec = JSON.parse(source.textContent);
    const datasets = spec.series.map((s, i) => ({
      label: s.label,
      data: s.data.map(([x, y]) => ({x, y})),
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length],
      borderDash: s.dash ? [6, 4] : [],
      borderWidth: s.dash ? 1.5 : 2,
      stepped: s.step ? "before" : false,
      pointRadius: 0,
    }));
    new Chart(canvas, {
      type: "line",
      data: {datasets},
      options: {
        animation: false,
        responsive: true,
        interaction: {mode: "nearest", axis: "x", intersect: false},
        plugins: {tooltip: {callbacks: {title: (items) => timeLabel(items[0].parsed.x)}}},
        scales: {
          x: {type: "linear", bounds: "data", ticks: {maxTicksLimit: 7, callback: (v) => timeLabel(v)}},
          y: {beginAtZero: true, title: {display: Boolean(spec.axes && spec.axes.y), text: spec.axes && spec.axes.y}},
        },
      },
    });
  }

  document.querySelectorAll("canvas[data-materials-chart]").forEach(draw);
})();
