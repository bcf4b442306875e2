// Maintenance pages (progressive enhancement: every page works without it).
// 1. Draws the charts whose data the page embeds: <canvas data-chart="<json_script id>">.
// 2. Follows /ws/maintenance/ on pages marked data-maintenance-live="fleet|queue|ticket|node":
//    updates health cards, prepends new tickets to the queue, shows toasts; reconnects with
//    backoff (1 s doubling to 30 s) unless the server refuses the user (4401/4403).
(function () {
  "use strict";

  // --- Charts ---------------------------------------------------------------------------------
  const PALETTE = ["#2471a3", "#c0392b", "#b7950b", "#1e8449", "#7d3c98"];

  function timeLabel(ms) {
    return new Date(ms).toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  }

  function drawChart(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") return;
    const spec = JSON.parse(source.textContent);
    const time = spec.x === "time";
    const series = spec.series.filter((s) => s.data.some((v) => v !== null));
    if (!series.length) {
      // nothing to draw: say so rather than draw a bare axis (an empty time axis starts at the epoch)
      const note = document.createElement("p");
      note.className = "empty";
      note.textContent = spec.empty || "No data to draw in this period.";
      canvas.closest("figure").replaceWith(note);
      return;
    }
    let colour = 0;
    let last = PALETTE[0];
    const datasets = series.map((s) => {
      // a dashed line (a threshold) takes the colour of the line it belongs to
      const stroke = s.dash ? last : PALETTE[colour++ % PALETTE.length];
      last = stroke;
      return {
        label: s.label,
        data: time ? s.data.map(([x, y]) => ({x, y})) : s.data,
        borderColor: stroke,
        backgroundColor: stroke,
        borderDash: s.dash ? [6, 4] : [],
        borderWidth: s.dash ? 1.5 : 2,
        pointRadius: time ? 0 : 3,
        spanGaps: true,
        yAxisID: s.axis || "y",
      };
    });
    const axes = spec.axes || {};
    const scales = {
      x: time
        ? {type: "linear", bounds: "data", ticks: {maxTicksLimit: 7, callback: (v) => timeLabel(v)}}
        : {type: "category", offset: true},
      y: {position: "left", title: {display: Boolean(axes.y), text: axes.y}},
    };
    // y_range: a fixed axis (a percentage runs 0-100 even over a period of zeros); y_min alone
    // keeps a count or an energy at zero and above
    if (spec.y_range) Object.assign(scales.y, {min: spec.y_range[0], max: spec.y_range[1]});
    else if (spec.y_min !== undefined) Object.assign(scales.y, {min: spec.y_min, suggestedMax: spec.y_suggested_max});
    if (time && spec.x_range) Object.assign(scales.x, {min: spec.x_range[0], max: spec.x_range[1]});
    if (series.some((s) => s.axis === "y1")) {
      scales.y1 = {position: "right", grid: {drawOnChartArea: false}, title: {display: Boolean(axes.y1), text: axes.y1}};
      if (spec.y1_range) Object.assign(scales.y1, {min: spec.y1_range[0], max: spec.y1_range[1]});
      else if (spec.y1_min !== undefined) Object.assign(scales.y1, {min: spec.y1_min, suggestedMax: spec.y1_suggested_max});
    }
    new Chart(canvas, {
      type: "line",
      data: {labels: spec.labels, datasets},
      options: {
        animation: false,
        responsive: true,
        // a phone gets a taller chart than the canvas's desktop proportions
        aspectRatio: canvas.parentElement.clientWidth < 560 ? 1.3 : canvas.width / canvas.height,
        interaction: {mode: "nearest", axis: "x", intersect: false},
        plugins: {tooltip: {callbacks: {title: (items) => (time ? timeLabel(items[0].parsed.x) : items[0].label)}}},
        scales,
      },
    });
  }

  document.querySelectorAll("canvas[data-chart]").forEach(drawChart);

  // --- Live updates ---------------------------------------------------------------------------
  const root = document.querySelector("[data-maintenance-live]");
  if (!root) return;
  const page = root.dataset.maintenanceLive;
  const pageNode = Number(root.dataset.node || 0);
  const pageTicket = Number(root.dataset.ticket || 0);
  const state = document.getElementById("live-state");
  const toasts = document.getElementById("maint-toasts");
  const queueData = document.getElementById("queue-live");
  const queue = queueData ? JSON.parse(queueData.textContent) : null;
  const COMPONENTS = {offline: "Offline", alerts: "Open alerts", tickets: "Open tickets", anomaly: "Anomalous behaviour",
    failure_risk: "Failure risk", remaining_life: "Remaining life below plan"};

  function setState(text) { if (state) state.textContent = text; }

  function utc(iso) { return iso ? new Date(iso).toISOString().slice(0, 16).replace("T", " ") : "—"; }

  // a date over its time, as the server renders them
  function fillDate(td, iso) {
    const [day, time] = utc(iso).split(" ");
    const small = document.createElement("small");
    small.textContent = time || "";
    td.replaceChildren(day, document.createElement("br"), small);
  }

  function dateCell(row, iso, field) {
    const td = cell(row, "", field);
    td.className = "nowrap";
    fillDate(td, iso);
  }

  function nodeName(id) {
    if (queue && queue.nodes[id]) return queue.nodes[id].name;
    const link = document.querySelector(`.health-card[data-node="${id}"] h3 a`);
    if (link) return link.textContent;
    if (id === pageNode) return document.title.replace(/ maintenance.*$/, "");
    return "a node";
  }

  function toast(text, level, href) {
    if (!toasts) return;
    const box = document.createElement("p");
    box.className = `toast toast-${level || "info"}`;
    box.setAttribute("role", "status");
    if (href) {
      const a = document.createElement("a");
      a.href = href; a.textContent = text;
      box.append(a);
    } else {
      box.textContent = text;
    }
    const close = document.createElement("button");
    close.type = "button"; close.className = "toast-close"; close.textContent = "×";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => box.remove());
    box.append(close);
    toasts.prepend(box);
    while (toasts.children.length > 5) toasts.lastElementChild.remove();
    setTimeout(() => box.remove(), 12000);
  }

  function band(score) {
    if (typeof score !== "number") return "unknown";
    return score >= 80 ? "good" : score >= 50 ? "fair" : "poor";
  }

  function swapClass(el, prefix, value) {
    for (const c of [...el.classList]) if (c.startsWith(prefix)) el.classList.remove(c);
    el.classList.add(prefix + value);
  }

  function bump(selector, by) {
    const el = document.querySelector(selector);
    if (el) el.textContent = Math.max(0, Number(el.textContent || 0) + by);
    return el;
  }

  function updateHealth(msg) {
    for (const card of document.querySelectorAll(`.health-card[data-node="${msg.node}"]`)) {
      const score = card.querySelector('[data-field="score"]');
      if (score && typeof msg.score === "number") {
        score.textContent = Math.round(msg.score);
        swapClass(score, "score-", band(msg.score));
        swapClass(card, "band-", band(msg.score));
      }
      const pill = card.querySelector('[data-field="online"] .pill');
      if (pill && typeof msg.online === "boolean") {
        const was = pill.classList.contains("pill-online");
        pill.className = `pill ${msg.online ? "pill-online" : "pill-offline"}`;
        pill.textContent = msg.online ? "online" : "offline";
        if (was !== msg.online && page === "fleet") {
          bump('[data-total="online"]', msg.online ? 1 : -1);
          bump('[data-total="offline"]', msg.online ? -1 : 1);
        }
      }
      const seen = card.querySelector('[data-field="last-seen"]');
      if (seen && msg.online) seen.textContent = `last seen ${utc(new Date().toISOString())}`;
      const parts = card.querySelector('[data-field="components"]');
      if (parts && msg.components) {
        parts.replaceChildren();
        for (const [key, points] of Object.entries(msg.components)) {
          const li = document.createElement("li");
          li.textContent = `${COMPONENTS[key] || key}: −${Number(points).toFixed(1)}`;
          parts.append(li);
        }
        if (!parts.children.length) {
          const li = document.createElement("li");
          li.className = "empty"; li.textContent = "Nothing: the node is in full health.";
          parts.append(li);
        }
      }
    }
  }

  function countTicket(t) {
    const card = document.querySelector(`.health-card[data-node="${t.node}"]`);
    if (card) {
      const link = card.querySelector(`[data-count="${t.severity}"]`);
      if (link) {
        const n = link.querySelector("[data-n]");
        n.textContent = Number(n.textContent || 0) + 1;
        link.hidden = false;
      }
      const none = card.querySelector('[data-field="no-tickets"]');
      if (none) none.hidden = true;
    }
    bump(`[data-total="${t.severity}"]`, 1);
  }

  function queueMatches(t) {
    const f = queue.filters;
    if (f.status.length && !f.status.includes(t.status)) return false;
    if (f.severity.length && !f.severity.includes(t.severity)) return false;
    if (f.issue_type.length && !f.issue_type.includes(t.issue_type)) return false;
    if (f.node && f.node !== t.node) return false;
    if (f.site && (!queue.nodes[t.node] || queue.nodes[t.node].site !== f.site)) return false;
    if (f.assignee === "me") return false; // a new ticket is nobody's yet
    return !(f.assignee === "none" && t.assignee);
  }

  function cell(row, text, field) {
    const td = document.createElement("td");
    if (text instanceof Node) td.append(text); else td.textContent = text;
    if (field) td.dataset.field = field;
    row.append(td);
    return td;
  }

  function badge(cls, text, field) {
    const span = document.createElement("span");
    span.className = cls; span.textContent = text;
    if (field) span.dataset.field = field;
    return span;
  }

  function prependRow(t) {
    const body = document.querySelector("#ticket-table tbody");
    if (!body || body.querySelector(`tr[data-ticket="${t.id}"]`)) return;
    body.querySelector("tr.empty-row")?.remove();
    const row = document.createElement("tr");
    row.dataset.ticket = t.id;
    row.className = "fresh";
    cell(row, badge(`prio prio-${t.priority}`, `P${t.priority}`, "priority"));
    const title = document.createElement("a");
    title.href = `/maintenance/tickets/${t.id}/`; title.textContent = t.title;
    const what = document.createElement("small");
    what.textContent = `#${t.id} · ${queue.labels.issue_type[t.issue_type] || t.issue_type}`;
    const td = cell(row, title);
    td.className = "ticket-col";
    td.append(document.createElement("br"), what);
    const node = document.createElement("a");
    node.href = `/maintenance/nodes/${t.node}/`; node.textContent = nodeName(t.node);
    cell(row, node);
    cell(row, badge(`sev sev-${t.severity}`, queue.labels.severity[t.severity] || t.severity, "severity"));
    cell(row, badge(`status tstatus-${t.status}`, queue.labels.status[t.status] || t.status, "status"));
    cell(row, `${t.occurrences}×`, "occurrences");
    cell(row, "—", "assignee");
    dateCell(row, new Date().toISOString());
    dateCell(row, t.last_seen, "last-seen");
    body.prepend(row);
  }

  function updateRow(t) {
    const row = document.querySelector(`#ticket-table tr[data-ticket="${t.id}"]`);
    if (!row) return;
    const set = (field, cls, text) => {
      const el = row.querySelector(`[data-field="${field}"]`);
      if (!el) return;
      if (cls) el.className = cls;
      el.textContent = text;
    };
    set("priority", `prio prio-${t.priority}`, `P${t.priority}`);
    set("severity", `sev sev-${t.severity}`, queue.labels.severity[t.severity] || t.severity);
    set("status", `status tstatus-${t.status}`, queue.labels.status[t.status] || t.status);
    set("occurrences", null, `${t.occurrences}×`);
    const seen = row.querySelector('[data-field="last-seen"]');
    if (seen) fillDate(seen, t.last_seen);
    row.classList.add("fresh");
  }

  function onTicket(msg) {
    const t = msg.ticket;
    const opened = msg.type === "ticket.opened";
    if (opened) {
      // a ticket's title names its node ("Power 14.96 kW above the critical limit of 11.25 kW on Mill-01")
      toast(`New ${t.severity} ticket: ${t.title}`, t.severity, `/maintenance/tickets/${t.id}/`);
    }
    if (page === "fleet" && opened) countTicket(t);
    if (page === "queue") {
      if (opened && queueMatches(t)) {
        document.getElementById("new-tickets").hidden = false;
        if (queue.page === 1) prependRow(t);
      } else if (!opened) {
        updateRow(t);
      }
    }
    if (page === "ticket" && t.id === pageTicket && !opened) {
      document.getElementById("ticket-changed").hidden = false;
    }
  }

  function onAlert(msg) {
    const a = msg.alert;
    if (msg.type === "alert.opened") {
      // the server words it (apps/core/labels.py): "Power 14.96 kW above the critical limit of 11.25 kW on Mill-01"
      toast(a.text, a.severity, `/maintenance/nodes/${a.node}/`);
    } else if (msg.type === "alert.resolved" && (page !== "node" || a.node === pageNode)) {
      toast(a.text, "info");
    }
  }

  function handle(msg) {
    switch (msg.type) {
      case "hello": setState("live"); break;
      case "ticket.opened": case "ticket.updated": onTicket(msg); break;
      case "alert.opened": case "alert.updated": case "alert.resolved": onAlert(msg); break;
      case "node.online": case "node.offline":
        toast(`${nodeName(msg.node)} is ${msg.online ? "back online" : "offline"}`, msg.online ? "info" : "warning",
          `/maintenance/nodes/${msg.node}/`);
        updateHealth(msg); break;
      case "node.health": updateHealth(msg); break;
      case "window.started": case "window.completed":
        if (page !== "node" || msg.node === pageNode) {
          toast(`Maintenance window #${msg.window} ${msg.type === "window.started" ? "started" : "completed"} on ${nodeName(msg.node)}`,
            "info", `/maintenance/nodes/${msg.node}/#windows`);
        }
        break;
      default: break;
    }
  }

  let delay = 1000;
  let pinger = null;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/maintenance/`);
    ws.onopen = () => {
      delay = 1000;
      pinger = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"type":"ping"}'), 30000);
    };
    ws.onmessage = (event) => handle(JSON.parse(event.data));
    ws.onclose = (event) => {
      clearInterval(pinger);
      if (event.code === 4401 || event.code === 4403) { setState("live updates not allowed"); return; }
      setState("reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
