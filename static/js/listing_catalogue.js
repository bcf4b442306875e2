// Listing forms: the processes and materials ticked for a listing or playbook stay ones that fit
// each other, and each typed part's process and material stay a pair the catalogue knows (the
// server refuses anything else with the same rules: apps.vendors.catalog.pairing_problems and
// pair_problem). Nothing is disabled, so either side may be chosen first:
// - ticking a material no ticked process works also ticks the first process that works it;
// - ticking a process that works none of the ticked materials also ticks its first material;
// - unticking a process unticks the materials no ticked process works any more.
(function () {
  "use strict";
  const source = document.getElementById("materials-by-process");
  const works = source ? JSON.parse(source.textContent) : {};
  const fits = (process, material) => (works[process] || []).includes(material);

  const boxes = (kind) => [...document.querySelectorAll(`input[data-catalogue="${kind}"]`)];
  const ticked = (kind) => boxes(kind).filter((b) => b.checked).map((b) => b.value);
  const tick = (kind, value) => {
    const box = boxes(kind).find((b) => b.value === value);
    if (box) box.checked = true;
  };

  boxes("material").forEach((box) =>
    box.addEventListener("change", () => {
      if (!box.checked) return;
      const processes = ticked("process");
      if (!processes.length || processes.some((p) => fits(p, box.value))) return;
      const process = boxes("process").find((b) => fits(b.value, box.value));
      if (process) process.checked = true;
    }),
  );
  boxes("process").forEach((box) =>
    box.addEventListener("change", () => {
      const materials = ticked("material");
      if (box.checked) {
        if (!materials.length || materials.some((m) => fits(box.value, m))) return;
        const first = (works[box.value] || [])[0];
        if (first) tick("material", first);
        return;
      }
      const processes = ticked("process");
      if (!processes.length) return;
      boxes("material").forEach((m) => {
        if (m.checked && !processes.some((p) => fits(p, m.value))) m.checked = false;
      });
    }),
  );

  // a typed part: one process select and one material select per fieldset.part
  document.querySelectorAll("fieldset.part").forEach((part) => {
    const process = part.querySelector('select[id$="-process"]');
    const material = part.querySelector('select[id$="-material"]');
    if (!process || !material) return;
    const firstOf = (select, test) => {
      const option = [...select.options].find((o) => o.value && test(o.value));
      return option ? option.value : null;
    };
    process.addEventListener("change", () => {
      if (!material.value || fits(process.value, material.value)) return;
      const value = firstOf(material, (m) => fits(process.value, m));
      if (value) material.value = value;
    });
    material.addEventListener("change", () => {
      if (!process.value || fits(process.value, material.value)) return;
      const value = firstOf(process, (p) => fits(p, material.value));
      if (value) process.value = value;
    });
  });
})();
