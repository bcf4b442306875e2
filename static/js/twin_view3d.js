// 3D view of a digital twin (three.js 0.187, plain ES module, no build step).
// The page provides an import map for "three" and "three/addons/".
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { STLLoader } from "three/addons/loaders/STLLoader.js";

const FIT_SIZE = 2;              // models are scaled to fit a box of this size
const CLICK_TOLERANCE_PX = 5;    // pointer travel above this is treated as a drag
const STRUCTURE_MIX = 0.35;      // frames/bases take only part of the wear colour
const LOADED_MIX = 0.65;         // loaded (textured) models keep some of their own colour
const FADE_SECONDS = 1.2;        // colour transitions after setWear/setZones
const GLOW = new THREE.Color(0xff3300);

const norm = (s) => String(s ?? "").toLowerCase().replace(/[_-]+/g, " ").replace(/\s+/g, " ").trim();
const materialsOf = (o) => (o.material ? (Array.isArray(o.material) ? o.material : [o.material]) : []);

/** Wear ramp: green (0) -> amber (50) -> red (100), interpolated by hue in sRGB HSL. */
function wearColor(percent, target = new THREE.Color()) {
  const p = THREE.MathUtils.clamp(Number(percent) || 0, 0, 100);
  const hue = p <= 50 ? THREE.MathUtils.lerp(120, 40, p / 50) : THREE.MathUtils.lerp(40, 0, (p - 50) / 50);
  return target.setHSL(hue / 360, 0.78, 0.47, THREE.SRGBColorSpace);
}

function disposeObject(root) {
  root.traverse((o) => {
    if (o.geometry) o.geometry.dispose();
    for (const m of materialsOf(o)) {
      for (const value of Object.values(m)) if (value && value.isTexture) value.dispose();
      m.dispose();
    }
  });
}

/** Scale `obj` to fit FIT_SIZE, centre it on x/z and stand it on y = 0. Returns false if empty. */
function fitToBox(obj) {
  obj.updateMatrixWorld(true);
  const box = new THREE.Box3().setFromObject(obj);
  if (box.isEmpty()) return false;
  const size = box.getSize(new THREE.Vector3());
  const maxDim = Math.max(size.x, size.y, size.z);
  if (!Number.isFinite(maxDim) || maxDim <= 0) return false;
  obj.scale.multiplyScalar(FIT_SIZE / maxDim);
  obj.updateMatrixWorld(true);
  box.setFromObject(obj);
  const c = box.getCenter(new THREE.Vector3());
  obj.position.x -= c.x;
  obj.position.z -= c.z;
  obj.position.y -= box.min.y;
  obj.updateMatrixWorld(true);
  return true;
}

// ---------------------------------------------------------------------------
// Procedural models. Every sub-mesh is named so setZones() can tint it.
// ---------------------------------------------------------------------------

function part(name, geometry, color, { structural = false, ...material } = {}) {
  const mesh = new THREE.Mesh(
    geometry,
    new THREE.MeshStandardMaterial({ color, metalness: 0.35, roughness: 0.5, ...material }),
  );
  mesh.name = name;
  mesh.userData.wearMix = structural ? STRUCTURE_MIX : 1;
  return mesh;
}

function at(obj, x, y, z) {
  obj.position.set(x, y, z);
  return obj;
}

const box = (w, h, d) => new THREE.BoxGeometry(w, h, d);
const cylX = (rTop, rBottom, len, seg = 32) => new THREE.CylinderGeometry(rTop, rBottom, len, seg).rotateZ(Math.PI / 2);

/** Flat annulus extruded along Z, centred on z = 0. */
function ringGeometry(outer, inner, width, segments = 64) {
  const shape = new THREE.Shape();
  shape.absarc(0, 0, outer, 0, Math.PI * 2, false);
  const hole = new THREE.Path();
  hole.absarc(0, 0, inner, 0, Math.PI * 2, true);
  shape.holes.push(hole);
  return new THREE.ExtrudeGeometry(shape, { depth: width, bevelEnabled: false, curveSegments: segments })
    .translate(0, 0, -width / 2);
}

/** Ball bearing, axis along Z, outer radius 1. */
function bearingAssembly() {
  const g = new THREE.Group();
  const steel = { metalness: 0.8, roughness: 0.3 };
  g.add(part("outer race", ringGeometry(1.0, 0.82, 0.5), 0xb7bec7, steel));
  g.add(part("inner race", ringGeometry(0.58, 0.42, 0.5), 0xb7bec7, steel));
  const ball = new THREE.SphereGeometry(0.12, 24, 16);
  const n = 10;
  for (let i = 0; i < n; i++) {
    const a = (i / n) * Math.PI * 2;
    g.add(at(part("rolling elements", ball, 0xe2e5ea, { metalness: 0.9, roughness: 0.2 }), Math.cos(a) * 0.7, Math.sin(a) * 0.7, 0));
    const b = a + Math.PI / n; // cage bridges sit between the balls
    const bridge = at(part("cage", box(0.05, 0.05, 0.3), 0xc08a3e), Math.cos(b) * 0.7, Math.sin(b) * 0.7, 0);
    bridge.rotation.z = b;
    g.add(bridge);
  }
  for (const z of [-0.15, 0.15]) {
    g.add(at(part("cage", new THREE.TorusGeometry(0.7, 0.025, 8, 64), 0xc08a3e), 0, 0, z));
  }
  return g;
}

function gearShape(teeth, rRoot, rTip, rBore) {
  const shape = new THREE.Shape();
  const step = (Math.PI * 2) / teeth;
  const pt = (a, r) => [Math.cos(a) * r, Math.sin(a) * r];
  shape.moveTo(...pt(0, rRoot));
  for (let i = 0; i < teeth; i++) {
    const a = i * step;
    shape.lineTo(...pt(a + step * 0.18, rTip));
    shape.lineTo(...pt(a + step * 0.45, rTip));
    shape.lineTo(...pt(a + step * 0.63, rRoot));
    shape.lineTo(...pt(a + step * 0.82, rRoot));
    shape.lineTo(...pt(a + step, rRoot));
  }
  const bore = new THREE.Path();
  bore.absarc(0, 0, rBore, 0, Math.PI * 2, true);
  shape.holes.push(bore);
  return shape;
}

const BUILDERS = {
  spindle() {
    const g = new THREE.Group();
    g.add(part("housing", cylX(0.55, 0.55, 2.2, 48), 0x9aa3ad, {
      structural: true, transparent: true, opacity: 0.35, depthWrite: false,
    }));
    g.add(part("shaft", cylX(0.2, 0.2, 2.9), 0xc8ccd2, { metalness: 0.7, roughness: 0.3 }));
    g.add(at(part("tool holder", cylX(0.3, 0.12, 0.5), 0x6b7280), 1.6, 0, 0));
    g.add(at(part("tool", cylX(0.05, 0.05, 0.5, 16), 0x4b5563, { metalness: 0.8 }), 2.1, 0, 0));
    for (const x of [0.8, -0.8]) { // front and rear bearings
      const b = bearingAssembly();
      b.scale.setScalar(0.5);
      b.rotation.y = Math.PI / 2;
      g.add(at(b, x, 0, 0));
    }
    return g;
  },
  bearing: bearingAssembly,
  gear() {
    const g = new THREE.Group();
    const geo = new THREE.ExtrudeGeometry(gearShape(18, 0.85, 1.0, 0.25), {
      depth: 0.3, bevelEnabled: true, bevelThickness: 0.03, bevelSize: 0.02, bevelSegments: 2, curveSegments: 24,
    }).translate(0, 0, -0.15);
    g.add(part("teeth", geo, 0xa8b0ba, { metalness: 0.7, roughness: 0.35 }));
    g.add(part("hub", ringGeometry(0.45, 0.25, 0.5), 0x98a1ac, { metalness: 0.7 }));
    g.add(part("shaft", new THREE.CylinderGeometry(0.25, 0.25, 1.2, 32).rotateX(Math.PI / 2), 0xc8ccd2, { metalness: 0.8 }));
    return g;
  },
  seal() {
    const g = new THREE.Group();
    const rubber = { metalness: 0, roughness: 0.85 };
    g.add(part("body", ringGeometry(1.0, 0.7, 0.35), 0x3a3f46, rubber));
    g.add(at(part("lip", new THREE.TorusGeometry(0.68, 0.07, 16, 72), 0x30343a, rubber), 0, 0, 0.22));
    g.add(at(part("spring", new THREE.TorusGeometry(0.76, 0.03, 8, 72), 0xb7bec7, { metalness: 0.9 }), 0, 0, 0.26));
    return g;
  },
  printer() {
    const g = new THREE.Group();
    const frame = { structural: true };
    g.add(at(part("frame", box(1.3, 0.08, 1.3), 0x5b6470, frame), 0, 0.04, 0));
    for (const [x, z] of [[-0.6, -0.6], [0.6, -0.6], [-0.6, 0.6], [0.6, 0.6]]) {
      g.add(at(part("frame", box(0.06, 1.6, 0.06), 0x5b6470, frame), x, 0.8, z));
    }
    for (const z of [-0.6, 0.6]) g.add(at(part("frame", box(1.26, 0.06, 0.06), 0x5b6470, frame), 0, 1.6, z));
    for (const x of [-0.6, 0.6]) g.add(at(part("frame", box(0.06, 0.06, 1.26), 0x5b6470, frame), x, 1.6, 0));
    g.add(at(part("bed", box(1.0, 0.05, 1.0), 0x2f3640), 0, 0.35, 0));
    g.add(at(part("gantry", box(1.2, 0.07, 0.07), 0x9aa3ad), 0, 1.1, 0));
    g.add(at(part("extruder", box(0.18, 0.18, 0.12), 0xd97706), 0.1, 1.1, 0.08));
    g.add(at(part("nozzle", new THREE.ConeGeometry(0.04, 0.1, 16).rotateX(Math.PI), 0xc0a060, { metalness: 0.8 }), 0.1, 0.96, 0.08));
    return g;
  },
  mill() {
    const g = new THREE.Group();
    g.add(at(part("base", box(1.6, 0.3, 1.0), 0x6b7280, { structural: true }), 0, 0.15, 0));
    g.add(at(part("table", box(1.2, 0.1, 0.6), 0x9aa3ad), 0, 0.35, 0.15));
    g.add(at(part("column", box(0.45, 1.6, 0.45), 0x6b7280, { structural: true }), 0, 1.1, -0.3));
    g.add(at(part("spindle head", box(0.4, 0.4, 0.55), 0x4b5563), 0, 1.55, 0.05));
    g.add(at(part("spindle", new THREE.CylinderGeometry(0.08, 0.08, 0.35, 24), 0xc8ccd2, { metalness: 0.8 }), 0, 1.2, 0.15));
    g.add(at(part("tool", new THREE.CylinderGeometry(0.03, 0.03, 0.2, 16), 0x374151, { metalness: 0.8 }), 0, 0.95, 0.15));
    return g;
  },
  lathe() {
    const g = new THREE.Group();
    g.add(at(part("base", box(2.0, 0.25, 0.5), 0x6b7280, { structural: true }), 0, 0.35, 0));
    for (const x of [-0.8, 0.8]) g.add(at(part("base", box(0.3, 0.25, 0.45), 0x6b7280, { structural: true }), x, 0.12, 0));
    g.add(at(part("spindle head", box(0.45, 0.5, 0.5), 0x4b5563), -0.75, 0.72, 0));
    g.add(at(part("chuck", cylX(0.18, 0.18, 0.12), 0xc8ccd2, { metalness: 0.8 }), -0.47, 0.72, 0));
    g.add(at(part("workpiece", cylX(0.06, 0.06, 0.8, 24), 0xd1d5db, { metalness: 0.6 }), -0.01, 0.72, 0));
    g.add(at(part("tailstock", box(0.25, 0.3, 0.35), 0x4b5563), 0.75, 0.62, 0));
    g.add(at(part("table", box(0.3, 0.12, 0.5), 0x9aa3ad), 0.1, 0.53, 0));
    g.add(at(part("tool", box(0.06, 0.06, 0.2), 0x374151), 0.1, 0.62, 0.15));
    return g;
  },
  laser() {
    const g = new THREE.Group();
    g.add(at(part("bed", box(1.8, 0.5, 1.2), 0x6b7280, { structural: true }), 0, 0.25, 0));
    for (const z of [-0.55, 0.55]) g.add(at(part("rails", box(1.7, 0.05, 0.06), 0x9aa3ad), 0, 0.53, z));
    g.add(at(part("gantry", box(0.12, 0.1, 1.3), 0x4b5563), 0.1, 0.62, 0));
    g.add(at(part("head", box(0.14, 0.16, 0.14), 0xd97706), 0.1, 0.6, 0.12));
    g.add(at(part("head", new THREE.ConeGeometry(0.04, 0.08, 16).rotateX(Math.PI), 0x374151), 0.1, 0.48, 0.12));
    return g;
  },
  mixer() {
    const g = new THREE.Group();
    const stand = { structural: true };
    for (const [x, z] of [[-0.5, -0.4], [0.5, -0.4], [-0.5, 0.4], [0.5, 0.4]]) {
      g.add(at(part("stand", box(0.08, 0.8, 0.08), 0x5b6470, stand), x, 0.4, z));
    }
    g.add(at(part("stand", box(1.08, 0.08, 0.88), 0x5b6470, stand), 0, 0.55, 0));
    g.add(at(part("motor", box(0.3, 0.25, 0.25), 0x374151), 0.65, 0.7, 0));
    const pivot = at(new THREE.Group(), 0, 1.15, 0);
    pivot.rotation.z = 0.45;
    const drum = part("drum", new THREE.CylinderGeometry(0.45, 0.6, 1.1, 40), 0xd97706);
    drum.add(at(part("drum", new THREE.CylinderGeometry(0.25, 0.45, 0.35, 40), 0xd97706), 0, 0.72, 0));
    for (let i = 0; i < 3; i++) { // ribs make the slow rotation visible
      const a = (i / 3) * Math.PI * 2;
      const rib = at(part("drum", box(0.06, 1.0, 0.06), 0x92400e), Math.cos(a) * 0.54, 0, Math.sin(a) * 0.54);
      rib.rotation.y = -a;
      drum.add(rib);
    }
    pivot.add(drum);
    g.add(pivot);
    g.userData.spin = drum;
    return g;
  },
  part() {
    const shape = new THREE.Shape();
    shape.moveTo(-0.6, -0.4).lineTo(0.6, -0.4).lineTo(0.6, 0.4).lineTo(-0.6, 0.4).lineTo(-0.6, -0.4);
    const geo = new THREE.ExtrudeGeometry(shape, {
      depth: 0.6, bevelEnabled: true, bevelThickness: 0.08, bevelSize: 0.08, bevelSegments: 3,
    }).translate(0, 0, -0.3);
    const g = new THREE.Group();
    g.add(part("body", geo, 0xa9b0ba));
    return g;
  },
};

function buildProcedural(twinType) {
  const build = Object.hasOwn(BUILDERS, twinType) ? BUILDERS[twinType] : BUILDERS.part;
  return build();
}

function guessFormat(url) {
  const ext = String(url).split(/[?#]/)[0].split(".").pop().toLowerCase();
  return ext === "stl" || ext === "gltf" ? ext : "glb";
}

function addNote(container, text) {
  const p = document.createElement("p");
  p.className = "view3d-note";
  p.textContent = text;
  Object.assign(p.style, { position: "relative", zIndex: "1", pointerEvents: "none" });
  container.appendChild(p);
  return p;
}

/** A view that does nothing (used when WebGL is missing or start-up failed). */
function inertView(container, message) {
  let note = null;
  try {
    if (container && container.appendChild) note = addNote(container, message);
  } catch { /* never throw */ }
  return {
    setWear() {},
    setZones() {},
    showPeer() {},
    dispose() { note?.remove(); note = null; },
  };
}

/**
 * Mount a three.js view of a digital twin into `container`.
 *
 * The container should have a non-zero height (CSS); if it has none, a min-height of
 * 320px is applied. The canvas is absolutely positioned to fill the container.
 * Never throws: without WebGL a `<p class="view3d-note">` is shown and an inert view returned.
 *
 * @param {HTMLElement} container  element that receives the canvas
 * @param {object} [options]
 * @param {string} [options.twinType]  "spindle"|"bearing"|"gear"|"seal"|"printer"|"mill"|"lathe"|"laser"|"part"|"mixer"|"other"
 * @param {string|null} [options.modelUrl]  same-origin URL of a GLB/glTF/STL file, or null for a procedural model
 * @param {"glb"|"gltf"|"stl"|""} [options.modelFormat]  file format; "" guesses from the URL extension
 * @param {(position: number[]) => void} [options.onPick]  called with [x, y, z] (3 decimals, world units of the
 *   fitted ~2-unit model) when the user clicks a point on the model
 * @returns {{setWear(percent: number): void,
 *            setZones(zones: Array<{zone: string, relative: number}>): void,
 *            showPeer(id: string|number, label: string, position: number[]|null, colorCss: string): void,
 *            dispose(): void}}
 */
export function mountTwinView(container, options) {
  if (!container || typeof container.appendChild !== "function") return inertView(null, "");
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
  } catch {
    return inertView(container, "3D view needs WebGL");
  }
  try {
    return createView(container, options || {}, renderer);
  } catch (err) {
    console.error("twin_view3d: could not start the 3D view", err);
    try { renderer.setAnimationLoop(null); renderer.dispose(); renderer.domElement.remove(); } catch { /* ignore */ }
    return inertView(container, "The 3D view could not be started.");
  }
}

function createView(container, opts, renderer) {
  const twinType = String(opts.twinType || "other");
  const onPick = typeof opts.onPick === "function" ? opts.onPick : null;

  const savedStyle = { position: container.style.position, minHeight: container.style.minHeight };
  if (getComputedStyle(container).position === "static") container.style.position = "relative";
  if (container.clientHeight < 10) container.style.minHeight = "320px";

  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setClearColor(0x000000, 0); // transparent: the page background shows through
  const canvas = renderer.domElement;
  canvas.classList.add("view3d-canvas");
  Object.assign(canvas.style, {
    position: "absolute", left: "0", top: "0", width: "100%", height: "100%", display: "block", touchAction: "none",
  });
  container.appendChild(canvas);

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(40, 1, 0.01, 100);
  scene.add(new THREE.HemisphereLight(0xffffff, 0xd5dae2, 2.0));
  const sun = new THREE.DirectionalLight(0xffffff, 2.2);
  sun.position.set(3, 5, 4);
  scene.add(sun);
  const fill = new THREE.DirectionalLight(0xffffff, 0.6);
  fill.position.set(-4, 2, -3);
  scene.add(fill);
  scene.add(new THREE.GridHelper(6, 24, 0xb4bbc6, 0xdde1e7));
  const modelRoot = new THREE.Group();
  const peerRoot = new THREE.Group();
  scene.add(modelRoot, peerRoot);

  const controls = new OrbitControls(camera, canvas);
  controls.enableDamping = true;
  controls.dampingFactor = 0.08;
  controls.minDistance = 0.5;
  controls.maxDistance = 15;

  let model = null;
  let spinner = null;
  let tinted = [];          // materials that carry a base colour
  let wear = null;          // null until setWear() is called
  let zoneMap = new Map();  // normalised mesh name -> relative stress 0..1
  let fadeLeft = 0;
  let disposed = false;
  let loadToken = 0;
  const notes = [];
  const peers = new Map();
  const peerGeometry = new THREE.SphereGeometry(0.045, 20, 14);
  const ramp = new THREE.Color();
  const glow = new THREE.Color();

  function frameCamera() {
    const b = new THREE.Box3().setFromObject(modelRoot);
    const cy = b.isEmpty() ? 0.8 : (b.min.y + b.max.y) / 2;
    controls.target.set(0, cy, 0);
    camera.position.set(1, 0.7, 1.25).normalize().multiplyScalar(3.8).add(controls.target);
    controls.update();
  }

  function computeTargets(immediate) {
    for (const { mesh, m } of tinted) {
      const mix = mesh.userData.wearMix ?? 1;
      const zone = zoneMap.get(norm(mesh.name));
      const target = m.userData.targetColor.copy(m.userData.baseColor);
      let heat = 0;
      if (wear !== null) {
        target.lerp(wearColor(wear, ramp), mix);
        if (wear > 80) heat = (wear - 80) / 20;
      }
      if (zone !== undefined) {
        target.lerp(wearColor(zone * 100, ramp), 0.7);
        if (zone > 0.8) heat = Math.max(heat, (zone - 0.8) / 0.2);
      }
      if (m.emissive) {
        m.userData.targetEmissive.copy(m.userData.baseEmissive).add(glow.copy(GLOW).multiplyScalar(0.35 * heat));
      }
      if (immediate) {
        m.color.copy(target);
        if (m.emissive) m.emissive.copy(m.userData.targetEmissive);
      }
    }
    fadeLeft = immediate ? 0 : FADE_SECONDS;
  }

  function fadeColors(dt) {
    if (fadeLeft <= 0) return;
    fadeLeft -= dt;
    const k = fadeLeft <= 0 ? 1 : 1 - Math.exp(-dt * 5);
    for (const { m } of tinted) {
      m.color.lerp(m.userData.targetColor, k);
      if (m.emissive) m.emissive.lerp(m.userData.targetEmissive, k);
    }
  }

  function setModel(obj, cloneMaterials) {
    if (!fitToBox(obj)) throw new Error("model has no visible geometry");
    if (model) { modelRoot.remove(model); disposeObject(model); }
    tinted = [];
    obj.traverse((o) => {
      if (!o.isMesh) return;
      if (cloneMaterials) { // loaded materials may be shared; recolour private copies
        const originals = materialsOf(o);
        const copies = originals.map((m) => m.clone());
        o.material = Array.isArray(o.material) ? copies : copies[0];
        originals.forEach((m) => m.dispose());
      }
      o.userData.wearMix ??= LOADED_MIX;
      for (const m of materialsOf(o)) {
        if (!m.color || !m.color.isColor) continue;
        m.userData.baseColor = m.color.clone();
        m.userData.targetColor = m.color.clone();
        if (m.emissive) {
          m.userData.baseEmissive = m.emissive.clone();
          m.userData.targetEmissive = m.emissive.clone();
        }
        tinted.push({ mesh: o, m });
      }
    });
    model = obj;
    spinner = obj.userData.spin || null;
    modelRoot.add(obj);
    frameCamera();
    computeTargets(true);
  }

  function showFallback() {
    setModel(buildProcedural(twinType), false);
    notes.push(addNote(container, "The 3D model file could not be shown; a generic model is displayed instead."));
  }

  function loadModel(url, format) {
    const token = ++loadToken;
    const stale = () => disposed || token !== loadToken;
    const fail = (err) => {
      if (stale()) return;
      console.warn("twin_view3d: could not load model", url, err);
      try { showFallback(); } catch (e) { console.error(e); }
    };
    const accept = (obj, cloneMaterials) => {
      if (stale()) { disposeObject(obj); return; }
      try { setModel(obj, cloneMaterials); } catch (err) { disposeObject(obj); fail(err); }
    };
    try {
      if ((format || guessFormat(url)).toLowerCase() === "stl") {
        new STLLoader().load(url, (geometry) => {
          if (!geometry.getAttribute("normal")) geometry.computeVertexNormals();
          const mesh = new THREE.Mesh(geometry, new THREE.MeshStandardMaterial({
            color: 0xa9b0ba, metalness: 0.35, roughness: 0.5, vertexColors: Boolean(geometry.hasColors),
          }));
          mesh.name = "part";
          mesh.userData.wearMix = 1;
          accept(new THREE.Group().add(mesh), false);
        }, undefined, fail);
      } else {
        new GLTFLoader().load(url, (gltf) => {
          const root = gltf && (gltf.scene || (gltf.scenes && gltf.scenes[0]));
          if (root) accept(root, true);
          else fail(new Error("glTF file has no scene"));
        }, undefined, fail);
      }
    } catch (err) {
      fail(err);
    }
  }

  // --- picking: a click is pointerdown + pointerup without dragging ---
  const raycaster = new THREE.Raycaster();
  const ndc = new THREE.Vector2();
  let down = null;
  const round3 = (v) => Math.round(v * 1000) / 1000 + 0; // "+ 0" turns -0 into 0

  function onPointerDown(e) {
    down = e.isPrimary && e.button === 0 ? { x: e.clientX, y: e.clientY, id: e.pointerId } : null;
  }
  function onPointerCancel() { down = null; }
  function onPointerUp(e) {
    if (!down || e.pointerId !== down.id) return;
    const moved = Math.hypot(e.clientX - down.x, e.clientY - down.y);
    down = null;
    if (moved > CLICK_TOLERANCE_PX || !model || !onPick) return;
    const rect = canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    ndc.set(((e.clientX - rect.left) / rect.width) * 2 - 1, -((e.clientY - rect.top) / rect.height) * 2 + 1);
    raycaster.setFromCamera(ndc, camera);
    const hit = raycaster.intersectObject(model, true).find((h) => h.object.isMesh && h.object.visible);
    if (!hit) return;
    try {
      onPick([round3(hit.point.x), round3(hit.point.y), round3(hit.point.z)]);
    } catch (err) {
      console.error("twin_view3d: onPick failed", err);
    }
  }
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerCancel);

  // --- sizing and render loop ---
  function resize() {
    if (disposed) return;
    const w = Math.max(1, container.clientWidth);
    const h = Math.max(1, container.clientHeight);
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
  }
  const observer = typeof ResizeObserver === "function" ? new ResizeObserver(resize) : null;
  if (observer) observer.observe(container);
  else window.addEventListener("resize", resize);
  resize();

  let last = 0;
  renderer.setAnimationLoop((time) => {
    const dt = last ? Math.min((time - last) / 1000, 0.1) : 0;
    last = time;
    if (spinner) spinner.rotation.y += dt * 0.5;
    fadeColors(dt);
    controls.update();
    renderer.render(scene, camera);
  });

  if (opts.modelUrl) loadModel(String(opts.modelUrl), String(opts.modelFormat || ""));
  else setModel(buildProcedural(twinType), false);

  // --- public API ---
  function setWear(percent) {
    const n = Number(percent);
    if (disposed || !Number.isFinite(n)) return;
    wear = THREE.MathUtils.clamp(n, 0, 100);
    computeTargets(false);
  }

  function setZones(zones) {
    if (disposed) return;
    zoneMap = new Map();
    for (const z of Array.isArray(zones) ? zones : []) {
      const rel = Number(z && z.relative);
      if (z && z.zone != null && Number.isFinite(rel)) zoneMap.set(norm(z.zone), THREE.MathUtils.clamp(rel, 0, 1));
    }
    computeTargets(false);
  }

  function showPeer(id, label, position, colorCss) {
    if (disposed) return;
    const key = String(id);
    let sphere = peers.get(key);
    const p = Array.isArray(position) ? position.map(Number)
      : position && typeof position === "object" ? [position.x, position.y, position.z].map(Number) : null;
    if (!p || p.length < 3 || !p.slice(0, 3).every(Number.isFinite)) {
      if (sphere) { peerRoot.remove(sphere); sphere.material.dispose(); peers.delete(key); }
      return;
    }
    if (!sphere) {
      sphere = new THREE.Mesh(peerGeometry, new THREE.MeshStandardMaterial({ roughness: 0.4, metalness: 0.1 }));
      peers.set(key, sphere);
      peerRoot.add(sphere);
    }
    sphere.name = String(label ?? key);
    sphere.userData.label = sphere.name;
    sphere.material.color.set(0x2563eb);
    if (typeof colorCss === "string" && colorCss) sphere.material.color.setStyle(colorCss);
    sphere.material.emissive.copy(sphere.material.color).multiplyScalar(0.3);
    sphere.position.set(p[0], p[1], p[2]);
  }

  function dispose() {
    if (disposed) return;
    disposed = true;
    loadToken++;
    renderer.setAnimationLoop(null);
    if (observer) observer.disconnect();
    else window.removeEventListener("resize", resize);
    canvas.removeEventListener("pointerdown", onPointerDown);
    canvas.removeEventListener("pointerup", onPointerUp);
    canvas.removeEventListener("pointercancel", onPointerCancel);
    controls.dispose();
    disposeObject(scene);
    peers.clear();
    renderer.dispose();
    try { renderer.forceContextLoss(); } catch { /* extension missing */ }
    canvas.remove();
    notes.forEach((n) => n.remove());
    container.style.position = savedStyle.position;
    container.style.minHeight = savedStyle.minHeight;
  }

  return { setWear, setZones, showPeer, dispose };
}
