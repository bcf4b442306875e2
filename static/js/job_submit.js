// Job submission: "Add a part" clones the empty part form (Django formset prefix __prefix__).
(function () {
  "use strict";
  document.getElementById("add-part").addEventListener("click", () => {
    const total = document.getElementById("id_parts-TOTAL_FORMS");
    const index = Number(total.value);
    if (index >= 20) return;
    const html = document.getElementById("part-template").innerHTML.replaceAll("__prefix__", index);
    document.getElementById("parts").insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
  });
})();
