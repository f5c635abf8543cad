// Sorting for the static report (active_learning.reports.page): the thumbnail grids by a
// <select> of "key-direction" values (the cards' data-* attributes), and every
// table.sortable by a click on a column header. No network, no library.
"use strict";
(function () {
  function value(text) {
    // Numbers sort as numbers, everything else as text.
    var trimmed = String(text === undefined ? "" : text).trim();
    var number = trimmed === "" ? NaN : Number(trimmed);
    return isNaN(number) ? { text: trimmed.toLowerCase() } : { number: number };
  }

  function compare(a, b) {
    var x = value(a), y = value(b);
    if ("number" in x && "number" in y) { return x.number - y.number; }
    if ("number" in x) { return -1; }
    if ("number" in y) { return 1; }
    return x.text < y.text ? -1 : x.text > y.text ? 1 : 0;
  }

  function sortGrid(select) {
    var grid = document.getElementById(select.getAttribute("data-grid"));
    if (!grid) { return; }
    var parts = select.value.split("-");
    var key = parts[0], direction = parts[1] === "desc" ? -1 : 1;
    var cards = Array.prototype.slice.call(grid.children);
    cards.sort(function (a, b) {
      return direction * compare(a.getAttribute("data-" + key), b.getAttribute("data-" + key));
    });
    cards.forEach(function (card) { grid.appendChild(card); });
  }

  function sortTable(header) {
    var table = header.closest("table");
    var body = table.tBodies[0];
    var column = Array.prototype.indexOf.call(header.parentNode.children, header);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.children, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column], y = b.cells[column];
      var left = x.hasAttribute("data-value") ? x.getAttribute("data-value") : x.textContent;
      var right = y.hasAttribute("data-value") ? y.getAttribute("data-value") : y.textContent;
      return (ascending ? 1 : -1) * compare(left, right);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-grid]"), function (select) {
      select.addEventListener("change", function () { sortGrid(select); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable thead th"),
      function (header) {
        header.addEventListener("click", function () { sortTable(header); });
      });
  });
}());
