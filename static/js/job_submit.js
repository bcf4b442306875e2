// Job submission: "Add a part" clones the empty part form (Django formset prefix __prefix__),
// and each part's process and material stay a pair the catalogue knows (the server refuses any
// other with the same rule: apps/jobs/forms.py PartForm.clean). Nothing is disabled, so either
// may be picked first: choosing a process the material does not suit moves the material to one
// it works, and choosing a material the process cannot work moves the process to one that can.
(function () {
  "use strict";
  const source = document.getElementById("materials-by-process");
  const works = source ? JSON.parse(source.textContent) : {};
  const fits = (process, material) => (works[process] || []).includes(material);

  function pair(part) {
    const process = part.querySelector('select[id$="-process"]');
    const material = part.querySelector('select[id$="-material"]');
    return process && material ? {process, material} : null;
  }

  function firstOf(select, test) {
    const option = [...select.options].find((o) => o.value && test(o.value));
    return option ? option.value : null;
  }

  function bind(part) {
    const p = pair(part);
    if (!p) return;
    p.process.addEventListener("change", () => {
      if (fits(p.process.value, p.material.value)) return;
      const material = firstOf(p.material, (m) => fits(p.process.value, m));
      if (material) p.material.value = material;
    });
    p.material.addEventListener("change", () => {
      if (fits(p.process.value, p.material.value)) return;
      const process = firstOf(p.process, (code) => fits(code, p.material.value));
      if (process) p.process.value = process;
    });
  }

  document.getElementById("add-part").addEventListener("click", () => {
    const total = document.getElementById("id_parts-TOTAL_FORMS");
    const index = Number(total.value);
    if (index >= 20) return;
    const html = document.getElementById("part-template").innerHTML.replaceAll("__prefix__", index);
    const parts = document.getElementById("parts");
    parts.insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    bind(parts.lastElementChild);
  });
  document.querySelectorAll("#parts fieldset.part").forEach(bind);
})();
