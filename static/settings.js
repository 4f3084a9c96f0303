// The live view's settings panel: what htmx attributes cannot say.
// - Re-draws of the panel (from the stream when the run's config changes, or from a
//   PATCH answer) keep the open groups open, keep the focus, and never clobber what is
//   being typed: a focused field whose text differs from its rendered value keeps the text
//   (unless it is the field this answer is about: a refused value goes back).
// - Enter in a field applies it (no form, so nothing navigates).
// - The loss chart's log scale switches on by itself for long runs (the chart says when:
//   data-auto-log) until the learner unticks it.
// - A frame drawn for another data layout (a new dataset kind) reloads the page.
(function () {
  "use strict";

  var PANEL = "live-settings";

  function typingIn(el) {
    return el && el.tagName === "INPUT" && (el.type === "text" || el.type === "number");
  }

  // ------------------------------------------------------------ re-draws keep the user's place
  document.addEventListener("htmx:oobBeforeSwap", function (ev) {
    var target = ev.detail.target;
    if (!target || target.id !== PANEL) return;
    var open = [];
    target.querySelectorAll("details[open]").forEach(function (d) { open.push(d.id); });
    var active = document.activeElement;
    var focus = null;
    if (active && target.contains(active) && active.id) {
      focus = { id: active.id, name: active.name, value: active.value,
                typed: typingIn(active) && active.value !== active.defaultValue };
    }
    var body = ev.detail.fragment && ev.detail.fragment.querySelector
      ? ev.detail.fragment.querySelector(".settings-body") : null;
    var submitted = body ? (body.getAttribute("data-submitted") || "").split(",") : [];
    // The swap happens right after this handler, synchronously; restore after it.
    queueMicrotask(function () { restore(open, focus, submitted); });
  });

  function restore(open, focus, submitted) {
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
    if (!focus) return;
    var el = document.getElementById(focus.id);
    if (!el || el.disabled) return;
    el.focus({ preventScroll: true });
    if (focus.typed && submitted.indexOf(focus.name) < 0) {
      el.value = focus.value;
      el.dataset.pending = "true"; // sent on blur (see below)
    }
  }

  // A kept text was typed into the old element: send it when the user leaves the field,
  // unless the browser's own change event (which comes before blur) already did.
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.dataset) delete ev.target.dataset.pending;
  }, true);
  document.addEventListener("focusout", function (ev) {
    var el = ev.target;
    if (!el || !el.dataset || el.dataset.pending !== "true") return;
    delete el.dataset.pending;
    if (el.value !== el.defaultValue) el.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // ------------------------------------------------------------ Enter applies a field
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (ev.key !== "Enter" || !typingIn(el) || !el.closest("#" + PANEL)) return;
    ev.preventDefault();
    // Blur fires the browser's change event (once, only when the value changed);
    // focusing again keeps the learner where they were.
    el.blur();
    el.focus();
  });

  // ------------------------------------------------------------ automatic log scale
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.id === "loss-log" && ev.isTrusted) ev.target.dataset.userSet = "true";
  });

  function autoLog() {
    var box = document.getElementById("loss-log");
    var caption = document.querySelector("#loss-chart [data-auto-log]");
    if (!box || !caption || box.dataset.userSet === "true") return;
    if (caption.getAttribute("data-auto-log") === "true" && !box.checked) box.checked = true;
  }

  // ------------------------------------------------------------ a new data layout reloads
  var root = document.getElementById("live-root");
  function layoutOf() {
    var el = document.getElementById("run-architecture");
    return el ? el.getAttribute("data-layout") : null;
  }
  var layout = layoutOf();

  document.addEventListener("htmx:sseMessage", function () {
    autoLog();
    var now = layoutOf();
    if (root && layout !== null && now !== null && now !== layout) window.location.reload();
  });
  autoLog();
})();
