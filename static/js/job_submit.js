// Job submission: "Add a part" clones the empty part form (Django formset prefix __prefix__),
// and each part's material list offers only the catalogue materials its chosen process works
// (the server refuses any other pair with the same rule: apps/jobs/forms.py PartForm.clean).
(function () {
  "use strict";
  const source = document.getElementById("materials-by-process");
  const works = source ? JSON.parse(source.textContent) : {};

  function follow(processSelect) {
    const materialSelect = document.getElementById(processSelect.id.replace(/-process$/, "-material"));
    if (!materialSelect || !works[processSelect.value]) return;
    const allowed = new Set(works[processSelect.value]);
    for (const option of materialSelect.options) {
      option.hidden = option.disabled = !allowed.has(option.value);
    }
    if (!allowed.has(materialSelect.value)) {
      const first = [...materialSelect.options].find((o) => !o.disabled);
      if (first) materialSelect.value = first.value;
    }
  }

  function bind(root) {
    for (const select of root.querySelectorAll('select[id$="-process"]')) {
      select.addEventListener("change", () => follow(select));
      follow(select);
    }
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
  bind(document);
})();
