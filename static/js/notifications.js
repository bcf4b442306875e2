// Live notifications over /ws/notifications/ (progressive enhancement: pages work without it).
(function () {
  "use strict";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const count = document.getElementById("notif-count");
  const live = document.getElementById("live-notifications");
  let delay = 1000;

  function connect() {
    const ws = new WebSocket(`${scheme}://${location.host}/ws/notifications/`);
    ws.onopen = () => { delay = 1000; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "hello") {
        count.textContent = msg.unread; count.hidden = msg.unread === 0;
      } else if (msg.type === "notification") {
        const n = Number(count.textContent || 0) + 1;
        count.textContent = n; count.hidden = false;
        const p = document.createElement("p");
        p.className = `flash notif-${msg.level}`;
        p.setAttribute("role", "status");
        const strong = document.createElement("strong");
        strong.textContent = msg.title;
        p.append(strong, " ", msg.body);
        live.prepend(p);
      }
    };
    ws.onclose = (event) => {
      if (event.code === 4401) return; // not signed in: don't retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
