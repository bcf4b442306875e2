// The page frame: a table wider than the page scrolls inside its own box instead of making the
// whole page scroll sideways (templates that already wrap theirs in .table-scroll are left be).
"use strict";
for (const table of document.querySelectorAll("main table")) {
  if (table.closest(".table-scroll")) continue;
  const box = document.createElement("div");
  box.className = "table-scroll";
  table.replaceWith(box);
  box.append(table);
}
