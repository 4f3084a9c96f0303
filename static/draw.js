// Backprop Live: draw your own data on the plane [-1, 1]², and load a CSV file into the
// new-run form's paste box. Every [data-draw] widget keeps its points in a hidden
// textarea as CSV text ("x1, x2, target" a line), which the form posts like pasted data.
// Click adds a point (the chosen class, or the slider's value for regression), drag moves
// it, right-click / long-press / remove mode removes it. No inline scripts (strict CSP).
(function () {
  "use strict";

  var SIZE = 300, R = 6, LONG_PRESS_MS = 550, MOVE_SLOP = 6;
  var SVG_NS = "http://www.w3.org/2000/svg";

  function hexRgb(hex) {
    var n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  // The server's diverging scale (app.ui.render): -1 orange → 0 grey → +1 blue.
  function valueColour(scale, v) {
    var t = Math.max(-1, Math.min(1, v));
    var end = hexRgb(t < 0 ? scale[0] : scale[2]), mid = hexRgb(scale[1]), a = Math.abs(t);
    var rgb = mid.map(function (m, i) { return Math.round(m + (end[i] - m) * a); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function round3(v) { return Math.round(v * 1000) / 1000; }

  function Widget(root) {
    this.root = root;
    this.svg = root.querySelector(".draw-plane");
    this.layer = root.querySelector(".draw-points");
    this.text = root.querySelector(".draw-data");
    this.taskInput = root.querySelector("[data-draw-task]");
    this.colours = (root.dataset.classColors || "").split(",");
    this.scale = (root.dataset.scale || "#f59322,#e8eaeb,#0877bd").split(",");
    this.task = root.dataset.task === "regression" ? "regression" : "classification";
    this.cls = 0;
    this.value = 1;
    this.removing = false;
    this.drag = null;
    try {
      this.points = JSON.parse(root.dataset.points || "[]");
    } catch (e) {
      this.points = [];
    }
    this.bind();
    this.setMode(this.task, true);
    this.render();
  }

  Widget.prototype.toPlane = function (ev) {
    var ctm = this.svg.getScreenCTM();
    if (!ctm) return null;
    var pt = this.svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    var p = pt.matrixTransform(ctm.inverse());
    var x = Math.max(-1, Math.min(1, p.x / SIZE * 2 - 1));
    var y = Math.max(-1, Math.min(1, 1 - p.y / SIZE * 2));
    return [round3(x), round3(y)];
  };

  Widget.prototype.bind = function () {
    var self = this, root = this.root;
    root.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b || !root.contains(b)) return;
      if (b.dataset.drawMode) self.setMode(b.dataset.drawMode, false);
      else if (b.dataset.drawClass !== undefined) self.setClass(+b.dataset.drawClass);
      else if (b.dataset.drawAction === "more-classes") self.moreClasses();
      else if (b.dataset.drawAction === "clear") { self.points = []; self.render(); }
      else if (b.dataset.drawAction === "remove-mode") {
        self.removing = !self.removing;
        b.setAttribute("aria-pressed", self.removing ? "true" : "false");
        b.classList.toggle("active", self.removing);
        root.classList.toggle("removing", self.removing);
      }
    });
    var slider = root.querySelector("[data-draw-value]");
    var out = root.querySelector("[data-draw-value-out]");
    if (slider) slider.addEventListener("input", function () {
      self.value = +slider.value;
      if (out) out.textContent = slider.value;
    });
    this.svg.addEventListener("contextmenu", function (ev) {
      ev.preventDefault();
      var i = self.hit(ev.target);
      if (i >= 0) self.remove(i);
    });
    this.svg.addEventListener("pointerdown", function (ev) { self.down(ev); });
    this.svg.addEventListener("pointermove", function (ev) { self.move(ev); });
    this.svg.addEventListener("pointerup", function (ev) { self.up(ev); });
    this.svg.addEventListener("pointercancel", function () { self.cancel(); });
  };

  Widget.prototype.hit = function (target) {
    var c = target.closest && target.closest("circle[data-index]");
    return c ? +c.dataset.index : -1;
  };

  Widget.prototype.down = function (ev) {
    if (ev.button !== 0) return;
    var i = this.hit(ev.target);
    if (this.removing) { if (i >= 0) this.remove(i); return; }
    var p = this.toPlane(ev);
    if (!p) return;
    ev.preventDefault();
    if (i < 0) {
      this.points.push([p[0], p[1], this.task === "regression" ? this.value : this.cls]);
      this.render();
      return;
    }
    var self = this;
    this.svg.setPointerCapture(ev.pointerId);
    this.drag = { index: i, x: ev.clientX, y: ev.clientY, moved: false, timer: null };
    // Long-press (touch has no right-click) removes the point.
    this.drag.timer = setTimeout(function () {
      if (self.drag && !self.drag.moved) { var k = self.drag.index; self.drag = null; self.remove(k); }
    }, LONG_PRESS_MS);
  };

  Widget.prototype.move = function (ev) {
    var d = this.drag;
    if (!d) return;
    if (!d.moved && Math.hypot(ev.clientX - d.x, ev.clientY - d.y) < MOVE_SLOP) return;
    d.moved = true;
    clearTimeout(d.timer);
    var p = this.toPlane(ev);
    if (!p) return;
    this.points[d.index][0] = p[0];
    this.points[d.index][1] = p[1];
    this.render();
  };

  Widget.prototype.up = function () { this.cancel(); };

  Widget.prototype.cancel = function () {
    if (this.drag) clearTimeout(this.drag.timer);
    this.drag = null;
  };

  Widget.prototype.remove = function (i) {
    this.points.splice(i, 1);
    this.render();
  };

  Widget.prototype.setMode = function (mode, initial) {
    var changed = mode !== this.task;
    this.task = mode;
    this.root.querySelectorAll("[data-draw-mode]").forEach(function (b) {
      var on = b.dataset.drawMode === mode;
      b.classList.toggle("active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    this.root.querySelector(".draw-classes").hidden = mode !== "classification";
    this.root.querySelector(".draw-value").hidden = mode !== "regression";
    if (this.taskInput) this.taskInput.value = mode;
    if (changed && !initial) {
      // Class labels and values do not translate: map classes to ±1 and back.
      this.points.forEach(function (p) {
        p[2] = mode === "regression" ? (p[2] >= 1 ? 1 : -1) : (p[2] >= 0 ? 1 : 0);
      });
      this.render();
    }
  };

  Widget.prototype.setClass = function (k) {
    this.cls = k;
    this.root.querySelectorAll("[data-draw-class]").forEach(function (b) {
      var on = +b.dataset.drawClass === k;
      b.classList.toggle("active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  };

  Widget.prototype.moreClasses = function () {
    var hidden = this.root.querySelector("[data-draw-class][hidden]");
    if (!hidden) return;
    hidden.hidden = false;
    this.setClass(+hidden.dataset.drawClass);
  };

  Widget.prototype.colour = function (t) {
    return this.task === "regression" ? valueColour(this.scale, t) : this.colours[t % this.colours.length];
  };

  Widget.prototype.render = function () {
    var self = this, layer = this.layer;
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    var used = 0;
    this.points.forEach(function (p, i) {
      var c = document.createElementNS(SVG_NS, "circle");
      c.setAttribute("cx", ((p[0] + 1) / 2 * SIZE).toFixed(1));
      c.setAttribute("cy", ((1 - p[1]) / 2 * SIZE).toFixed(1));
      c.setAttribute("r", R);
      c.setAttribute("fill", self.colour(p[2]));
      c.setAttribute("data-index", i);
      c.setAttribute("class", "draw-point");
      layer.appendChild(c);
      if (self.task === "classification") used = Math.max(used, p[2] + 1);
    });
    // Classes already drawn stay offered.
    this.root.querySelectorAll("[data-draw-class]").forEach(function (b) {
      if (+b.dataset.drawClass < Math.max(used, 2)) b.hidden = false;
    });
    this.text.value = this.points.map(function (p) {
      return p[0] + ", " + p[1] + ", " + (self.task === "regression" ? round3(p[2]) : p[2]);
    }).join("\n");
    var n = this.points.length;
    this.root.querySelector("[data-draw-count]").textContent = n + (n === 1 ? " point" : " points");
    this.showProblem();
  };

  // The same rules the server applies, said before a request is made.
  Widget.prototype.problem = function () {
    var n = this.points.length;
    if (n < 2) return "Draw at least 2 points (there " + (n === 1 ? "is 1" : "are " + n) + ").";
    if (this.task === "classification") {
      var first = this.points[0][2];
      if (this.points.every(function (p) { return p[2] === first; })) {
        return "Every point is class " + first + ": add points of another class.";
      }
    }
    return "";
  };

  Widget.prototype.showProblem = function () {
    var el = this.root.querySelector("[data-draw-error]");
    if (!el) return;
    var text = this.points.length ? this.problem() : "";
    el.textContent = text;
    el.hidden = !text;
  };

  function init(scope) {
    var roots = scope.querySelectorAll ? scope.querySelectorAll("[data-draw]") : [];
    for (var i = 0; i < roots.length; i++) {
      if (!roots[i]._drawWidget) roots[i]._drawWidget = new Widget(roots[i]);
    }
  }

  // "Train on these points" on the draw page: refuse in plain words before posting.
  document.addEventListener("htmx:confirm", function (ev) {
    var form = ev.target.closest && ev.target.closest("form[data-draw-submit]");
    if (!form) return;
    var root = form.querySelector("[data-draw]");
    var widget = root && root._drawWidget;
    var text = widget ? widget.problem() : "";
    if (!text) return;
    ev.preventDefault();
    var el = root.querySelector("[data-draw-error]");
    el.textContent = text;
    el.hidden = false;
  });

  // ------------------------------------------------------------ CSV file → paste box
  // The file's text goes into the box as if pasted (a header row is fine: the server
  // skips a first row that holds no number). Captured so the preview is asked once, after.
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches("input[type=file][data-csv-into]")) return;
    ev.stopPropagation();
    var box = document.querySelector(input.dataset.csvInto);
    var file = input.files && input.files[0];
    if (!box || !file) return;
    file.text().then(function (text) {
      box.value = text;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }, true);

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (ev) { init(ev.detail.elt); });
})();
