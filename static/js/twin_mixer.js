// The spatial mixer: sliders bound to the mixing session's twin document, edited live by
// everyone in the room; the outcome comes from the API at once, on every move.
import { connectTwin, renderAvatars } from "./twin_live.js";

const script = document.getElementById("mixer-script");
const twinId = Number(script.dataset.twin);
const catalog = JSON.parse(document.getElementById("mixer-catalog").textContent);
const form = document.getElementById("mixer");
const canEdit = form.dataset.canEdit === "1";
const sliders = document.getElementById("sliders");
const out = document.getElementById("outcome");
const warnings = document.getElementById("warnings");
const message = document.getElementById("mixer-message");
// any of the page's tokens (the sign-out form has one for everyone): viewers compute outcomes
// too, only editors get the save form
const csrf = document.querySelector("[name=csrfmiddlewaretoken]");

const say = (text, isError = false) => { message.textContent = text; message.className = isError ? "errors" : ""; };
const headers = () => ({ "Content-Type": "application/json", Accept: "application/json", ...(csrf ? { "X-CSRFToken": csrf.value } : {}) });

const rounded = (value) => Number(Number(value).toPrecision(4)); // a slider's free value, kept readable
let local = null; // what this page shows: {material, recipe, params}

function current() {
  const params = {};
  for (const input of sliders.querySelectorAll("input[type=range]")) params[input.name] = rounded(input.value);
  return { material: form.material.value, recipe: form.recipe.value, params };
}

function buildSliders(recipeKey, params) {
  const recipe = catalog.recipes[recipeKey];
  document.getElementById("recipe-description").textContent = recipe ? recipe.description : "";
  sliders.replaceChildren();
  if (!recipe) return;
  for (const [name, range] of Object.entries(recipe.ranges)) {
    const value = params && params[name] !== undefined ? params[name] : range.default;
    const label = document.createElement("label");
    label.htmlFor = `m-${name}`;
    label.innerHTML = `<span></span> <output id="o-${name}"></output>`;
    label.firstChild.textContent = `${range.label} (${range.unit}, ${range.min} to ${range.max})`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id: `m-${name}`, name, min: range.min, max: range.max, step: "any", value, disabled: !canEdit });
    input.dataset.path = `params/${name}`;
    label.append(input);
    sliders.append(label);
    label.querySelector("output").textContent = value;
  }
}

function showDoc(doc) {
  local = { material: doc.material, recipe: doc.recipe, params: { ...(doc.params || {}) } };
  form.material.value = local.material; form.recipe.value = local.recipe;
  const focused = document.activeElement;
  if (focused && focused.name && sliders.contains(focused)) {
    // keep the slider under the user's hand; update the others
    for (const input of sliders.querySelectorAll("input[type=range]")) {
      if (input !== focused && local.params[input.name] !== undefined) { input.value = local.params[input.name]; document.getElementById(`o-${input.name}`).textContent = input.value; }
    }
  } else {
    buildSliders(local.recipe, local.params);
  }
  form.material.disabled = form.recipe.disabled = !canEdit;
  compute();
}

let computing = null, again = false;
async function compute() {
  if (computing) { again = true; return; }
  const body = current();
  computing = fetch("/api/v1/twins/mixer/outcome/", { method: "POST", headers: headers(), body: JSON.stringify(body), credentials: "same-origin" });
  try {
    const response = await computing;
    const data = await response.json();
    if (!response.ok) { renderError(data); } else { renderOutcome(data); }
  } catch (err) { say("The outcome could not be computed (network).", true); }
  computing = null;
  if (again) { again = false; compute(); }
}

function renderError(data) {
  const details = data.error && data.error.details ? Object.entries(data.error.details).map(([k, v]) => `${k}: ${v.join(" ")}`).join("; ") : "";
  out.replaceChildren();
  warnings.replaceChildren();
  say(`${data.error ? data.error.message : "Invalid"} ${details}`, true);
}

function renderOutcome(o) {
  const risk = o.defect_risk;
  const riskClass = risk < 0.1 ? "risk-low" : risk < 0.3 ? "risk-mid" : "risk-high";
  const rows = [
    ["Particle size (P80)", `${o.particle_size_um.toFixed(1)} µm`, "particle-size"],
    ["Regime", o.regime, "regime"],
    ["Defect risk", `${(risk * 100).toFixed(1)} %`, "defect-risk", riskClass],
    ["Homogeneity", `${(o.homogeneity * 100).toFixed(1)} %`, "homogeneity"],
    ["Specific energy", `${o.specific_energy_kwh_t.toFixed(1)} kWh/t`, "specific-energy"],
    ["Energy for the batch", `${o.energy_kwh.toFixed(3)} kWh`, "energy"],
    ["Liquid nitrogen", `${o.ln2_kg.toFixed(2)} kg`, "ln2"],
  ];
  out.replaceChildren();
  for (const [k, v, id, cls] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; dd.id = `out-${id}`; if (cls) dd.className = cls;
    out.append(dt, dd);
  }
  warnings.replaceChildren(...o.warnings.map((w) => { const li = document.createElement("li"); li.textContent = w; return li; }));
}

async function commit(ops, what) {
  const reply = await client.edit(ops);
  if (reply.type === "ack") say(`${what} (version ${reply.version}).`);
  else say(`${what}: not saved. ${reply.message}`, true);
}

sliders.addEventListener("input", (event) => {
  const input = event.target;
  document.getElementById(`o-${input.name}`).textContent = rounded(input.value);
  compute();
});
sliders.addEventListener("focusin", (event) => { if (event.target.dataset.path) client.cursor({ path: event.target.dataset.path }); });
sliders.addEventListener("change", (event) => {
  const input = event.target;
  const value = rounded(input.value);
  commit([{ op: "set", path: `params/${input.name}`, value }], `${input.name} set to ${value}`);
});
form.material.addEventListener("change", () => commit([{ op: "set", path: "material", value: form.material.value }], `Material: ${form.material.value}`));
form.recipe.addEventListener("change", () => {
  const recipe = catalog.recipes[form.recipe.value];
  const params = Object.fromEntries(Object.entries(recipe.ranges).map(([k, r]) => [k, r.default]));
  buildSliders(form.recipe.value, params);
  compute();
  commit([{ op: "set", path: "recipe", value: form.recipe.value }, { op: "set", path: "params", value: params }], `Process: ${recipe.label}`);
});

function renderPresence(state) {
  renderAvatars(document.getElementById("presence"), state);
  const others = [...state.peers.values()];
  for (const input of form.querySelectorAll("[data-path]")) input.style.outline = "";
  for (const { peer, cursor } of others) {
    if (!cursor || !cursor.path) continue;
    const input = form.querySelector(`[data-path="${CSS.escape(cursor.path)}"]`);
    if (input) input.style.outline = `2px solid ${peer.colour}`;
  }
}

const client = connectTwin(twinId, {
  onStatus: (text, ok) => { const s = document.getElementById("live-state"); s.textContent = text; s.className = ok ? "" : "errors"; },
  onSnapshot: (state) => showDoc(state.doc),
  onChange: (state, change) => { showDoc(state.doc); if (state.me && change.author !== state.me.user) say(`${change.author} changed the recipe (version ${change.version}).`); },
  onPresence: renderPresence,
  onCursor: (_id, _cursor, state) => renderPresence(state),
  onError: (m) => say(m.message, true),
});

const saveForm = document.getElementById("save-recipe");
if (saveForm) {
  saveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { ...current(), name: saveForm.name.value, message: saveForm.message.value, twin: twinId };
    const response = await fetch("/api/v1/twins/recipes/", { method: "POST", headers: headers(), body: JSON.stringify(body), credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) { renderError(data); return; }
    say(`Saved “${data.name}” as version ${data.version}.`);
    const tbody = document.querySelector("#recipes tbody");
    const empty = tbody.querySelector(".empty-row"); if (empty) empty.remove();
    const tr = document.createElement("tr");
    tr.dataset.recipe = data.id;
    const cells = [`${data.name} v${data.version}`, `${data.material} / ${data.recipe}`, `${data.outcome.particle_size_um.toFixed(1)} µm`, `${Math.round(data.outcome.defect_risk * 100)} %`, data.author, "just now"];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    tr.append(document.createElement("td"));
    tbody.prepend(tr);
    saveForm.reset();
  });
}

document.getElementById("recipes").addEventListener("click", async (event) => {
  const id = event.target.dataset.load;
  if (!id) return;
  const response = await fetch(`/api/v1/twins/recipes/${id}/`, { headers: { Accept: "application/json" } });
  if (!response.ok) { say("That recipe could not be read.", true); return; }
  const r = await response.json();
  commit([{ op: "set", path: "material", value: r.material }, { op: "set", path: "recipe", value: r.recipe }, { op: "set", path: "params", value: r.params }], `Loaded ${r.name} v${r.version}`);
});
