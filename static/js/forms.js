// Small behaviours of plain forms, kept out of the HTML so that the Content-Security-Policy can
// forbid inline scripts: <select data-autosubmit> sends its form when changed, and
// <button data-confirm="question"> asks before its form is sent.
"use strict";
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
