/* Editing the network on its diagram (templates/partials/live_network.html, app/ui/edit_routes.py).
 *
 * The diagram is re-rendered by every live frame, so nothing here binds to its elements:
 * clicks and keys are caught on the document and read the target from data-* attributes
 * ("event delegation"). What must outlive a frame (the message line, the weight popover,
 * the focused control) lives outside #network or is restored after each swap.
 */
(function () {
  "use strict";

  var root = document.getElementById("live-root");
  var network = document.getElementById("network");
  if (!root || !network) return;
  var runId = root.getAttribute("data-run-id");
  var base = "/ui/runs/" + encodeURIComponent(runId);

  var message = document.createElement("div");
  message.id = "diagram-message";
  message.className = "diagram-message";
  message.setAttribute("role", "status");
  message.setAttribute("aria-live", "polite");
  network.insertAdjacentElement("afterend", message);

  var card = network.closest(".card") || network.parentElement;
  var popover = document.createElement("div");
  popover.id = "weight-popover";
  popover.className = "weight-popover";
  popover.hidden = true;
  popover.setAttribute("role", "dialog");
  popover.setAttribute("aria-label", "Edit a weight");
  card.appendChild(popover);

  // The server escapes what it sends; the answers are small HTML fragments.
  function send(method, url, data) {
    var init = { method: method, headers: { "HX-Request": "true" }, credentials: "same-origin" };
    if (data) init.body = new URLSearchParams(data);
    return fetch(url, init).then(function (r) {
      return r.text().then(function (text) { return { ok: r.ok, status: r.status, html: text }; });
    }, function () {
      return { ok: false, status: 0, html: '<span class="error">The server did not answer; try again.</span>' };
    });
  }

  function running() {
    var status = document.getElementById("status");
    return !!status && status.getAttribute("data-status") === "running";
  }

  // ------------------------------------------------------------ layers, neurons, features
  var busy = false;

  function changeStructure(field, value) {
    if (busy) return;
    busy = true;
    var data = {};
    data[field] = value;
    send("POST", base + "/structure", data).then(function (res) {
      busy = false;
      message.innerHTML = res.html;
    });
  }

  // ------------------------------------------------------------ the weight popover
  var editing = null; // {key, returnFocus}

  function closeEditor() {
    if (!editing) return;
    var back = editing.returnFocus;
    editing = null;
    popover.hidden = true;
    popover.innerHTML = "";
    markEditing();
    if (back && document.contains(back)) back.focus();
  }

  function markEditing() {
    var old = network.querySelectorAll(".editing");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("editing");
    if (!editing) return;
    var el = network.querySelector('[data-w="' + editing.key + '"], [data-b="' + editing.key + '"]');
    if (el) el.classList.add("editing");
  }

  function place(clientX, clientY) {
    var box = card.getBoundingClientRect();
    var width = popover.offsetWidth, height = popover.offsetHeight;
    var x = clientX - box.left + 12, y = clientY - box.top + 12;
    if (x + width > box.width - 6) x = Math.max(6, clientX - box.left - width - 12);
    if (y + height > box.height - 6) y = Math.max(6, clientY - box.top - height - 12);
    popover.style.left = x + "px";
    popover.style.top = y + "px";
  }

  function syncRunning() {
    var button = popover.querySelector(".wp-set");
    var note = popover.querySelector(".wp-note");
    if (!button || !note) return;
    var isRunning = running();
    button.disabled = isRunning;
    note.textContent = isRunning ? note.getAttribute("data-pause-text") : "";
  }

  function openEditor(key, clientX, clientY) {
    var returnFocus = document.activeElement !== document.body ? document.activeElement : null;
    send("GET", base + "/weight?key=" + encodeURIComponent(key)).then(function (res) {
      if (!res.ok) { message.innerHTML = res.html; return; }
      editing = { key: key, returnFocus: returnFocus };
      popover.innerHTML = res.html;
      popover.hidden = false;
      place(clientX, clientY);
      syncRunning();
      markEditing();
      var input = popover.querySelector("input[name=value]");
      if (input) { input.focus(); input.select(); }
    });
  }

  popover.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    var input = form.querySelector("input[name=value]");
    var out = form.querySelector(".wp-msg");
    send("POST", base + "/weight", { key: form.getAttribute("data-key"), value: input.value }).then(function (res) {
      if (res.ok) {
        message.innerHTML = res.html;
        closeEditor();
      } else if (out) {
        out.innerHTML = res.html;
      }
    });
  });

  popover.addEventListener("click", function (ev) {
    if (ev.target.closest(".wp-close")) closeEditor();
  });

  // ------------------------------------------------------------ clicks and keys
  // Links are thin: a click near one (within a few px) counts as on it.
  function linkNear(x, y) {
    var offsets = [[0, 0], [0, -3], [0, 3], [-3, 0], [3, 0], [0, -6], [0, 6], [-5, -5], [5, 5], [-5, 5], [5, -5]];
    for (var i = 0; i < offsets.length; i++) {
      var hits = document.elementsFromPoint(x + offsets[i][0], y + offsets[i][1]);
      for (var j = 0; j < hits.length; j++) {
        if (hits[j].matches && hits[j].matches("#network path[data-w]")) return hits[j];
      }
    }
    return null;
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!t.closest || !network.contains(t)) return;
    var button = t.closest("button[data-layers]");
    if (button) { if (!button.disabled) changeStructure("hidden_layers", button.getAttribute("data-layers")); return; }
    var feature = t.closest("[data-features]");
    if (feature) { changeStructure("features", feature.getAttribute("data-features")); return; }
    var bias = t.closest("[data-b]");
    if (bias) { openEditor(bias.getAttribute("data-b"), ev.clientX, ev.clientY); return; }
    var link = t.closest("path[data-w]") || (t.closest("svg.net") && !t.closest(".neuron") ? linkNear(ev.clientX, ev.clientY) : null);
    if (link) openEditor(link.getAttribute("data-w"), ev.clientX, ev.clientY);
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && editing) { ev.preventDefault(); closeEditor(); }
  });
  // On the stable #network box, before the document's Space = start/stop (app.js) sees it.
  network.addEventListener("keydown", function (ev) {
    var feature = ev.target.closest && ev.target.closest("[data-features]");
    if (feature && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      ev.stopPropagation();
      changeStructure("features", feature.getAttribute("data-features"));
    }
  });

  document.addEventListener("pointerdown", function (ev) {
    if (!editing || popover.contains(ev.target)) return;
    var t = ev.target;
    if (t.closest && t.closest("#network path[data-w], #network [data-b]")) return;
    closeEditor();
  });

  // ------------------------------------------------------------ surviving re-renders
  // A frame replaces the focused control: remember it by its data-focus-key and put focus back.
  var focusKey = null;
  network.addEventListener("focusin", function (ev) {
    var el = ev.target.closest && ev.target.closest("[data-focus-key]");
    focusKey = el ? el.getAttribute("data-focus-key") : null;
  });
  document.addEventListener("pointerdown", function (ev) {
    if (!network.contains(ev.target)) focusKey = null;
  });
  document.addEventListener("focusin", function (ev) {
    if (!network.contains(ev.target)) focusKey = null;
  });

  document.addEventListener("htmx:sseMessage", function () {
    if (focusKey && (document.activeElement === document.body || !document.contains(document.activeElement))) {
      var el = network.querySelector('[data-focus-key="' + focusKey + '"]');
      if (el) el.focus({ preventScroll: true });
    }
    markEditing();
    syncRunning();
  });
})();
