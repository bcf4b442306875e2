// The live connection to one twin (/ws/twins/<id>/): snapshot, catch-up after a reconnect,
// edits applied in the server's order, presence, cursors and locks. Pages build on it:
// twin_detail.js (properties editor, 3D view) and twin_mixer.js (the mixer's sliders).

/** Value at `parts` in `doc`, or undefined. */
export function getAt(doc, parts) {
  let node = doc;
  for (const part of parts) {
    if (node === null || typeof node !== "object" || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

function parentOf(doc, parts) {
  const parent = getAt(doc, parts.slice(0, -1));
  if (parent === null || typeof parent !== "object") throw new Error("no parent at " + parts.join("/"));
  return parent;
}

/** Applies one operation as the server stored it (typed `parts`, see apps/twins/ot.py). */
export function applyOp(doc, op) {
  const parts = op.parts;
  if (op.op === "set") {
    parentOf(doc, parts)[parts[parts.length - 1]] = structuredClone(op.value);
  } else if (op.op === "insert") {
    parentOf(doc, parts).splice(parts[parts.length - 1], 0, structuredClone(op.value));
  } else if (op.op === "remove") {
    const parent = parentOf(doc, parts);
    const key = parts[parts.length - 1];
    if (Array.isArray(parent)) parent.splice(key, 1); else delete parent[key];
  } else if (op.op === "move") {
    const source = op.from_parts;
    const value = getAt(doc, source);
    applyOp(doc, { op: "remove", parts: source });
    const target = parentOf(doc, parts);
    const key = parts[parts.length - 1];
    if (Array.isArray(target)) target.splice(key, 0, value); else target[key] = value;
  }
  return doc;
}

/** True when one path is the other or lies inside it (locks conflict along a branch). */
export function related(a, b) {
  const pa = a.split("/"), pb = b.split("/");
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) if (pa[i] !== pb[i]) return false;
  return true;
}

/** Who else is here, as coloured initials (the title says where their cursor is). */
export function renderAvatars(box, state) {
  const others = [...state.peers.values()];
  if (!others.length) {
    const none = document.createElement("span");
    none.className = "empty"; none.textContent = "only you";
    box.replaceChildren(none);
    return;
  }
  box.replaceChildren(...others.map(({ peer, cursor }) => {
    const span = document.createElement("span");
    span.className = "avatar"; span.style.background = peer.colour; span.dataset.user = peer.user;
    span.title = `${peer.name}${cursor && cursor.path ? " · at " + cursor.path : ""}`;
    span.textContent = peer.name.split(/[\s@.]+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
    return span;
  }));
}

/**
 * connectTwin(twinId, handlers) opens the socket and keeps it open (reconnecting with backoff).
 * handlers: onSnapshot(state), onChange(state, {ops, author, version}), onPresence(state),
 * onCursor(peerId, cursor, state), onLocks(state), onStatus(text, ok), onReject(msg), onError(msg)
 */
export function connectTwin(twinId, handlers = {}) {
  const call = (name, ...args) => { if (handlers[name]) handlers[name](...args); };
  const state = {
    version: null, doc: {}, canEdit: false, me: null,
    peers: new Map(),   // peer id -> {peer, cursor}
    locks: new Map(),   // lock id -> {lock, path, mode, holder, expires_at}
    pending: new Map(), // edit id -> {path, resolve}
  };
  let socket = null, beat = null, lockBeat = null, retry = 0, closedForGood = false, seq = 0;

  function url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = state.version !== null ? `?after=${state.version}` : "";
    return `${scheme}://${location.host}/ws/twins/${twinId}/${after}`;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); return true; }
    return false;
  }

  function open() {
    call("onStatus", "connecting…", false);
    socket = new WebSocket(url());
    socket.addEventListener("open", () => {
      retry = 0;
      beat = setInterval(() => send({ type: "heartbeat" }), 15000);
      // keep my locks alive (their TTL is minutes; a tab that closes lets them expire)
      lockBeat = setInterval(() => {
        for (const lock of state.locks.values()) {
          if (state.me && lock.holder === state.me.user) send({ type: "lock", action: "heartbeat", lock: lock.lock });
        }
      }, 60000);
    });
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      clearInterval(beat); clearInterval(lockBeat);
      state.peers.clear(); call("onPresence", state);
      if (closedForGood) return;
      if (event.code === 4401 || event.code === 4403) {
        call("onStatus", event.code === 4401 ? "signed out: reload the page" : "no access to this twin", false);
        return;
      }
      const wait = Math.min(30000, 1000 * 2 ** retry++);
      call("onStatus", `disconnected; retrying in ${Math.round(wait / 1000)} s`, false);
      setTimeout(open, wait);
    });
  }

  function receive(m) {
    switch (m.type) {
      case "snapshot": {
        state.me = m.peer; state.canEdit = m.can_edit;
        if (state.version === null || m.version < state.version) { state.doc = m.properties; state.version = m.version; }
        state.locks = new Map(m.locks.map((l) => [l.lock, l]));
        call("onStatus", `live · version ${state.version}`, true);
        call("onSnapshot", state); call("onLocks", state);
        break;
      }
      case "twin.edit": {
        if (m.version <= state.version) break; // already applied (catch-up overlap)
        if (m.version !== state.version + 1) { resync(); break; }
        try { for (const op of m.ops) applyOp(state.doc, op); }
        catch (err) { resync(); break; }
        state.version = m.version;
        call("onStatus", `live · version ${state.version}`, true);
        call("onChange", state, m);
        break;
      }
      case "ack": case "reject": {
        const waiting = state.pending.get(m.id);
        state.pending.delete(m.id);
        if (m.type === "reject") call("onReject", m);
        if (waiting) waiting.resolve(m);
        break;
      }
      case "presence": {
        if (m.event === "leave") state.peers.delete(m.peer.id);
        else state.peers.set(m.peer.id, { peer: m.peer, cursor: m.cursor || state.peers.get(m.peer.id)?.cursor || null });
        call("onPresence", state);
        break;
      }
      case "cursor": {
        const known = state.peers.get(m.peer);
        const cursor = m.position ? { position: m.position } : { path: m.path };
        if (known) known.cursor = cursor;
        call("onCursor", m.peer, cursor, state);
        break;
      }
      case "lock.acquired": state.locks.set(m.lock, m); call("onLocks", state); break;
      case "lock.released": case "lock.expired": state.locks.delete(m.lock); call("onLocks", state); break;
      case "twin.simulation": call("onSimulation", m); break;
      case "error": call("onError", m); break;
      default: break;
    }
  }

  async function resync() {
    // the stream and our copy disagree: take the server's document as it is now
    const response = await fetch(`/api/v1/twins/${twinId}/`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const twin = await response.json();
    state.doc = twin.properties; state.version = twin.version;
    call("onSnapshot", state);
  }

  /** Sends operations made against the current version; resolves with the ack or reject. */
  function edit(ops, message = "") {
    const id = `e${++seq}`;
    return new Promise((resolve) => {
      state.pending.set(id, { ops, resolve });
      if (!send({ type: "edit", id, base_version: state.version, ops, message })) {
        state.pending.delete(id);
        resolve({ type: "reject", id, reason: "offline", message: "Not connected; the change was not sent." });
      }
    });
  }

  open();
  return {
    state,
    send,
    edit,
    cursor: (cursor) => send({ type: "cursor", ...cursor }),
    lock: (path, mode = "exclusive") => send({ type: "lock", action: "acquire", path, mode }),
    release: (lock) => send({ type: "lock", action: "release", lock }),
    close: () => { closedForGood = true; if (socket) socket.close(); },
  };
}
