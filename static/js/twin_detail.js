// The twin page: the live properties editor (presence, cursors, locks) and the 3D view.
import { connectTwin, getAt, related, renderAvatars } from "./twin_live.js";

const script = document.getElementById("twin-script");
const twinId = Number(script.dataset.twin);
const editor = document.getElementById("editor");
const message = document.getElementById("editor-message");
const liveState = document.getElementById("live-state");
const presence = document.getElementById("presence");
const canEditPage = editor.dataset.canEdit === "1";

function say(text, isError = false) {
  message.textContent = text;
  message.className = isError ? "errors" : "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** Leaves of the document: primitives and empty containers, with their typed paths. */
function leaves(value, parts = []) {
  const isContainer = value !== null && typeof value === "object";
  if (!isContainer || Object.keys(value).length === 0) return parts.length ? [{ parts, value }] : [];
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value).sort();
  return keys.flatMap((k) => leaves(value[k], [...parts, k]));
}

const show = (value) => (typeof value === "string" ? value : JSON.stringify(value));
function parseValue(text) {
  try { return JSON.parse(text); } catch { return text; }
}

let view = null;
const shownPeers = new Set(); // peers whose picked point the 3D view shows

function lockOn(state, path) {
  for (const lock of state.locks.values()) if (related(lock.path, path)) return lock;
  return null;
}

// Keys that are codes read as words ("params › Temperature (°C)"); the path itself, which the
// Path field takes, shows on hover. Keys added live after the page loaded show as they are.
const keyLabels = JSON.parse(document.getElementById("key-labels")?.textContent || "{}");

function pathCell(parts) {
  const path = parts.join("/");
  const words = parts.map((part) => keyLabels[part] || part).join(" › ");
  return words === parts.join(" › ") ? el("code", {}, path) : el("span", { title: path }, words);
}

function renderEditor(state) {
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.path : null;
  const typed = focused ? document.activeElement.value : null;
  const rows = leaves(state.doc);
  if (!rows.length) {
    editor.replaceChildren(el("p", { class: "empty" }, "No properties yet." + (state.canEdit ? " Add one below." : "")));
    return;
  }
  const tbody = el("tbody");
  for (const row of rows) {
    const path = row.parts.join("/");
    const lock = lockOn(state, path);
    const mine = lock && state.me && lock.holder === state.me.user;
    const blocked = lock && !mine && lock.mode === "exclusive";
    const input = el("input", {
      value: show(row.value), "data-path": path, "aria-label": `Value of ${path}`,
      disabled: !state.canEdit || blocked,
      onfocus: () => client.cursor({ path }),
      onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); e.target.blur(); } },
      onchange: (e) => setValue(row.parts, parseValue(e.target.value)),
    });
    let lockCell;
    if (mine) lockCell = el("span", {}, el("small", {}, "locked by you "), el("button", { class: "secondary outline small", type: "button", onclick: () => client.release(lock.lock) }, "Release"));
    else if (lock) lockCell = el("small", { class: "locked", title: `${lock.mode} lock on ${lock.path} until ${lock.expires_at}` }, `locked by ${lock.holder}`);
    else if (state.canEdit) lockCell = el("button", { class: "secondary outline small", type: "button", onclick: () => client.lock(path), "aria-label": `Lock ${path}` }, "Lock");
    else lockCell = "";
    const remove = state.canEdit && !blocked
      ? el("button", { class: "secondary outline small", type: "button", "aria-label": `Remove ${path}`, onclick: () => removePath(row.parts) }, "×")
      : "";
    tbody.append(el("tr", { "data-path": path }, el("td", {}, pathCell(row.parts)), el("td", {}, input), el("td", {}, lockCell), el("td", {}, remove)));
  }
  editor.replaceChildren(el("div", { class: "table-scroll" }, el("table", { class: "props" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Path"), el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Lock"), el("th", { scope: "col" }, ""))),
    tbody)));
  if (focused) {
    const again = editor.querySelector(`input[data-path="${CSS.escape(focused)}"]`);
    if (again && !again.disabled) { again.focus(); if (typed !== null && typed !== show(getAt(state.doc, focused.split("/")))) again.value = typed; }
  }
  markCursors(state);
}

function markCursors(state) {
  for (const row of editor.querySelectorAll("tr[data-path]")) { row.style.outline = ""; row.removeAttribute("data-peer"); }
  for (const { peer, cursor } of state.peers.values()) {
    if (!cursor || !cursor.path) continue;
    const row = editor.querySelector(`tr[data-path="${CSS.escape(cursor.path)}"]`);
    if (row) { row.style.outline = `2px solid ${peer.colour}`; row.setAttribute("data-peer", peer.name); row.title = `${peer.name} is here`; }
  }
}

const renderPresence = (state) => renderAvatars(presence, state);

async function send(ops, what) {
  const reply = await client.edit(ops);
  if (reply.type === "ack") say(`${what}: saved as version ${reply.version}.`);
  else say(`${what}: not saved. ${reply.message}${reply.reason === "conflict" || reply.reason === "rebase" ? " The page shows the latest version; try again." : ""}`, true);
}

function setValue(parts, value) {
  send([{ op: "set", path: parts.join("/"), value }], parts.join("/"));
}

function removePath(parts) {
  send([{ op: "remove", path: parts.join("/") }], `Removed ${parts.join("/")}`);
}

const addForm = document.getElementById("add-property");
if (addForm) {
  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const parts = addForm.path.value.split("/").map((p) => p.trim()).filter(Boolean);
    if (!parts.length) { say("Give a path like spindle/bearing/type.", true); return; }
    let value = parseValue(addForm.value.value);
    // create missing parents: set the first missing level to the nested object
    let depth = parts.length - 1;
    for (let i = 0; i < parts.length - 1; i++) {
      const node = getAt(client.state.doc, parts.slice(0, i + 1));
      if (node === undefined) { depth = i; break; }
      if (node === null || typeof node !== "object") { say(`${parts.slice(0, i + 1).join("/")} is a value, not a group.`, true); return; }
    }
    for (let i = parts.length - 1; i > depth; i--) value = { [parts[i]]: value };
    send([{ op: "set", path: parts.slice(0, depth + 1).join("/"), value }], parts.join("/"));
    addForm.reset();
  });
}

const client = connectTwin(twinId, {
  onStatus: (text, ok) => { liveState.textContent = text; liveState.className = ok ? "" : "errors"; },
  onSnapshot: (state) => renderEditor(state),
  onChange: (state, change) => {
    renderEditor(state);
    if (state.me && change.author !== state.me.user) say(`${change.author} saved version ${change.version}.`);
    const note = document.getElementById("history-note");
    if (note) note.hidden = false;
    document.getElementById("diff-to").value = change.version;
  },
  onLocks: (state) => renderEditor(state),
  onPresence: (state) => {
    renderPresence(state); markCursors(state);
    for (const id of shownPeers) if (!state.peers.has(id)) { shownPeers.delete(id); if (view) view.showPeer(id, null, null, null); }
  },
  onCursor: (peerId, cursor, state) => {
    renderPresence(state); markCursors(state);
    const known = state.peers.get(peerId);
    if (cursor.position && known) { shownPeers.add(peerId); if (view) view.showPeer(peerId, known.peer.name, cursor.position, known.peer.colour); }
  },
  onError: (m) => say(m.message, true),
});
// The 3D view loads after the editor is live: without WebGL or three.js the editor still works.
const viewBox = document.getElementById("view3d");
try {
  const { mountTwinView } = await import("./twin_view3d.js");
  view = mountTwinView(viewBox, {
    twinType: script.dataset.type,
    modelUrl: script.dataset.modelUrl || null,
    modelFormat: script.dataset.modelFormat || "",
    onPick: (position) => client.cursor({ position }),
  });
  const hint = JSON.parse(document.getElementById("wear-hint").textContent);
  if (hint) view.setWear(hint.wear_percent);
  for (const [id, { peer, cursor }] of client.state.peers) {
    if (cursor && cursor.position) { shownPeers.add(id); view.showPeer(id, peer.name, cursor.position, peer.colour); }
  }
} catch (err) {
  viewBox.textContent = "The 3D view could not start.";
}
if (!canEditPage) say("");
