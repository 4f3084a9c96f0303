// The inspector: a click on a cell of ∂E/∂W (or a gradient-check row) swaps in that
// weight's chain rule (GET /ui/runs/{id}/inspect/chain). Cells carry data-row/data-col;
// a big matrix is an image, so the cell comes from the click's position.
(function () {
  "use strict";

  function cellOf(target, event) {
    if (target.dataset && target.dataset.row !== undefined) {
      return [target.dataset.row, target.dataset.col];
    }
    if (target.tagName === "IMG") {
      const fig = target.closest(".im.pickable");
      const box = target.getBoundingClientRect();
      const rows = Number(fig.dataset.rows);
      const cols = Number(fig.dataset.cols);
      const row = Math.min(rows - 1, Math.floor(((event.clientY - box.top) / box.height) * rows));
      const col = Math.min(cols - 1, Math.floor(((event.clientX - box.left) / box.width) * cols));
      return [String(row), String(col)];
    }
    return null;
  }

  function show(layer, row, col) {
    const stage = document.getElementById("stage-gradients");
    if (!stage || !window.htmx) return false;
    const url = `${stage.dataset.chainUrl}&layer=${layer}&row=${row}&col=${col}`;
    window.htmx.ajax("GET", url, { target: "#inspect-chain", swap: "outerHTML" }).then(() => {
      const chain = document.getElementById("inspect-chain");
      if (chain) chain.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
    document.querySelectorAll(".im.pickable .picked").forEach((el) => el.classList.remove("picked"));
    return true;
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest(".check-row .chain-link");
    if (link) {
      const row = link.closest(".check-row");
      if (show(row.dataset.layer, row.dataset.row, row.dataset.col)) event.preventDefault();
      return;
    }
    const fig = event.target.closest(".im.pickable");
    if (!fig) return;
    const cell = cellOf(event.target, event);
    if (!cell) return;
    if (show(fig.dataset.layer, cell[0], cell[1]) && event.target.tagName === "rect") {
      event.target.classList.add("picked");
    }
  });
})();
