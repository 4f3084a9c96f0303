// Backprop Live: the few behaviours htmx attributes cannot express.
// - theme toggle (light/dark, remembered), space = start/stop,
// - hover read-out on line charts (reads the chart's data-hover rows),
// - the prediction box (POST /api/runs/{id}/predict; click on the output map).
// No inline scripts anywhere (the pages are meant to run under a strict CSP).
(function () {
  "use strict";

  // ------------------------------------------------------------ theme
  var root = document.documentElement;
  try {
    var saved = localStorage.getItem("backprop-live-theme");
    if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  } catch (e) { /* storage disabled: follow the system */ }

  function effectiveTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("#theme-toggle");
    if (!btn) return;
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("backprop-live-theme", next); } catch (e) { /* ignore */ }
  });

  // ------------------------------------------------------------ keyboard
  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" || el.isContentEditable;
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== " " || ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    var btn = document.getElementById("start-stop");
    if (!btn || btn.disabled) return;
    ev.preventDefault();
    btn.click();
  });

  // ------------------------------------------------------------ chart hover
  var tooltip = null;
  var lastHover = null; // {svg id path, clientX, clientY} to re-apply after a live swap

  function rows(svg) {
    // A twin chart (the log view of the same curves) shares its sibling's rows.
    // A live chart keeps its rows in a hidden sibling (#<chart>-hover) that frames refresh.
    var source = svg.hasAttribute("data-hover") ? svg : svg.parentElement.querySelector("[data-hover]");
    var raw = (source && source.getAttribute("data-hover")) || "";
    if (svg._hoverRaw === raw) return svg._hoverRows;
    svg._hoverRaw = raw;
    svg._hoverRows = raw ? raw.split(";").map(function (r) { return r.split(","); }) : [];
    return svg._hoverRows;
  }

  function showTooltip(text, x, y) {
    if (!tooltip) {
      tooltip = document.createElement("div");
      tooltip.className = "chart-tooltip";
      tooltip.setAttribute("role", "status");
      document.body.appendChild(tooltip);
    }
    tooltip.textContent = text;
    tooltip.style.left = (x + 14) + "px";
    tooltip.style.top = (y + 12) + "px";
    tooltip.hidden = false;
  }

  function hideHover() {
    if (tooltip) tooltip.hidden = true;
    document.querySelectorAll(".chart .hover-line").forEach(function (l) { l.setAttribute("visibility", "hidden"); });
  }

  function hover(svg, clientX, clientY) {
    var data = rows(svg);
    if (!data.length || !svg.getScreenCTM()) return hideHover();
    var pt = svg.createSVGPoint();
    pt.x = clientX; pt.y = clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    var left = +svg.dataset.left, right = +svg.dataset.right, x0 = +svg.dataset.x0, x1 = +svg.dataset.x1;
    if (p.x < left || p.x > right) return hideHover();
    var epoch = x0 + (p.x - left) / (right - left) * (x1 - x0);
    var best = data[0], dist = Infinity;
    for (var i = 0; i < data.length; i++) {
      var d = Math.abs(+data[i][0] - epoch);
      if (d < dist) { dist = d; best = data[i]; }
    }
    var names = (svg.dataset.names || "").split("|");
    var parts = ["epoch " + best[0]];
    for (var j = 1; j < best.length; j++) {
      if (best[j] !== "") parts.push((names[j - 1] || "y" + j) + " " + best[j]);
    }
    var line = svg.querySelector(".hover-line");
    if (line) {
      var lx = left + (+best[0] - x0) / (x1 - x0) * (right - left);
      line.setAttribute("x1", lx); line.setAttribute("x2", lx); line.setAttribute("visibility", "visible");
    }
    var readout = svg.closest(".card") && svg.closest(".card").querySelector(".hover-readout");
    if (readout) readout.textContent = parts.join(" · ");
    showTooltip(parts.join("  ·  "), clientX, clientY);
  }

  document.addEventListener("mousemove", function (ev) {
    var svg = ev.target.closest && ev.target.closest("svg.chart[data-x0]");
    if (!svg) { if (lastHover) { lastHover = null; hideHover(); } return; }
    lastHover = { box: svg.parentElement && svg.parentElement.id, cls: svg.getAttribute("class"), x: ev.clientX, y: ev.clientY };
    hover(svg, ev.clientX, ev.clientY);
  });

  // Live charts grow by appended paths (one per curve per frame, app/ui/livechart.py):
  // join them into the curve's first path, so the page keeps the same number of nodes.
  document.addEventListener("htmx:sseMessage", function () {
    var groups = document.querySelectorAll("svg.chart g.curve");
    for (var i = 0; i < groups.length; i++) {
      var paths = groups[i].children;
      if (paths.length < 2) continue;
      var d = "";
      for (var j = 0; j < paths.length; j++) d += paths[j].getAttribute("d") || "";
      paths[0].setAttribute("d", d);
      while (paths.length > 1) groups[i].removeChild(paths[1]);
    }
  });

  // A chart's mark (early stopping's best epoch, app/ui/livechart.py) is drawn in the chart;
  // a frame that moves it sends only its hidden #<chart>-mark-at element: put it there.
  document.addEventListener("htmx:sseMessage", function () {
    var sources = document.querySelectorAll("[data-mark-for]");
    for (var i = 0; i < sources.length; i++) {
      var at = sources[i].dataset, mark = document.getElementById(at.markFor);
      if (!mark) continue;
      var line = mark.querySelector("line"), dot = mark.querySelector("circle"), text = mark.querySelector("text");
      line.setAttribute("x1", at.x); line.setAttribute("x2", at.x);
      dot.setAttribute("cx", at.x); dot.setAttribute("cy", at.y);
      text.setAttribute("x", at.tx); text.setAttribute("y", at.ty);
      text.setAttribute("text-anchor", at.anchor);
      text.textContent = at.label;
      mark.setAttribute("data-epoch", at.epoch);
    }
  });

  // Live frames replace the chart: put the read-out back where the mouse still is.
  document.addEventListener("htmx:sseMessage", function () {
    if (!lastHover || !lastHover.box) return;
    var box = document.getElementById(lastHover.box);
    if (!box) return;
    var svgs = box.querySelectorAll("svg.chart[data-x0]");
    for (var i = 0; i < svgs.length; i++) {
      if (svgs[i].getAttribute("class") === lastHover.cls) hover(svgs[i], lastHover.x, lastHover.y);
    }
  });

  // ------------------------------------------------------------ neuron preview
  // Hovering a neuron shows its map over the whole output plot (as in Playground);
  // live frames replace the diagram, so the hovered neuron is remembered by its key.
  var hoveredNeuron = null;

  function neuronPreview(show) {
    var stack = document.getElementById("output-stack");
    if (!stack) return;
    var img = document.getElementById("neuron-preview");
    if (!show) { if (img) img.hidden = true; return; }
    var source = document.querySelector('#network .neuron[data-key="' + hoveredNeuron + '"] image');
    if (!source) { if (img) img.hidden = true; return; }
    if (!img) {
      img = document.createElement("img");
      img.id = "neuron-preview";
      img.alt = "";
      stack.insertBefore(img, document.getElementById("output-points"));
    }
    img.src = source.getAttribute("href");
    img.hidden = false;
  }

  document.addEventListener("mouseover", function (ev) {
    var neuron = ev.target.closest && ev.target.closest("#network .neuron");
    var key = neuron ? neuron.getAttribute("data-key") : null;
    if (key === hoveredNeuron) return;
    hoveredNeuron = key;
    neuronPreview(key !== null);
  });

  document.addEventListener("htmx:sseMessage", function () {
    if (hoveredNeuron !== null) neuronPreview(true);
  });

  // ------------------------------------------------------------ prediction box
  function fmt(v) {
    if (v === null || v === undefined) return "—";
    var a = Math.abs(v);
    return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(2) : (+v.toPrecision(4)).toString();
  }

  function predict(form) {
    var runId = form.dataset.runId, n = +form.dataset.nInputs;
    var row = [], empty = [];
    for (var i = 0; i < n; i++) {
      var input = form.querySelector("#predict-x" + i);
      var text = input ? input.value.trim() : "";
      if (text === "") empty.push(i + 1);
      row.push(Number(text));
    }
    var out = document.getElementById("predict-result");
    // Empty input: say so in words, send nothing (an empty box is not 0).
    if (empty.length) {
      out.textContent = "Type a number for input " + empty.join(" and ") + " first: it is empty.";
      out.classList.remove("has-result");
      return;
    }
    if (row.some(function (v) { return !isFinite(v); })) {
      out.textContent = "Enter numbers for every input.";
      return;
    }
    out.textContent = "…";
    fetch("/api/runs/" + encodeURIComponent(runId) + "/predict", {
      method: "POST",
      // HX-Request marks a same-origin page call (the CSRF check of cookie sessions wants it).
      headers: { "Content-Type": "application/json", "Accept": "application/json", "HX-Request": "true" },
      body: JSON.stringify({ inputs: [row] })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) {
        var detail = res.body && res.body.detail;
        out.textContent = "Error: " + (typeof detail === "string" ? detail : JSON.stringify(detail));
        return;
      }
      var outputs = res.body.outputs[0].map(fmt).join(", ");
      var text = "(" + row.map(fmt).join(", ") + ") → " + outputs;
      if (res.body.labels) text += " · class " + res.body.labels[0];
      out.textContent = text;
      out.classList.add("has-result");
    }).catch(function (err) {
      out.textContent = "Error: " + err;
    });
  }

  document.addEventListener("submit", function (ev) {
    if (ev.target.id !== "predict-form") return;
    ev.preventDefault();
    predict(ev.target);
  });

  document.addEventListener("click", function (ev) {
    var stack = ev.target.closest && ev.target.closest("#output-stack");
    if (!stack) return;
    var kind = stack.dataset.kind;
    var rect = stack.getBoundingClientRect();
    var fx = (ev.clientX - rect.left) / rect.width, fy = (ev.clientY - rect.top) / rect.height;
    var form = document.getElementById("predict-form");
    if (!form) return;
    if (kind === "plane") {
      var b = +stack.dataset.bound;
      setInput(0, -b + 2 * b * fx);
      setInput(1, b - 2 * b * fy);
    } else if (kind === "curve") {
      var x0 = +stack.dataset.x0, x1 = +stack.dataset.x1;
      setInput(0, x0 + (x1 - x0) * fx);
    } else {
      return;
    }
    predict(form);
  });

  // ------------------------------------------------------------ stale responses
  // htmx still swaps the response of an element that a newer swap has removed. For the
  // descent page's autoplay that means a frame in flight when Pause (or a new rate) is
  // clicked would take over again; such elements carry data-drop-if-detached.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var elt = ev.detail.requestConfig && ev.detail.requestConfig.elt;
    if (elt && elt.hasAttribute("data-drop-if-detached") && !elt.isConnected) {
      ev.detail.shouldSwap = false;
    }
  });

  function setInput(i, v) {
    var input = document.getElementById("predict-x" + i);
    if (input) input.value = (+v.toPrecision(4)).toString();
  }
})();
