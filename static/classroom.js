// Backprop Live: the classroom (app/ui/watch.py).
// - Watch page: the live stream also carries the controls and settings fragments; their
//   containers there are hidden sinks ([data-watch-drop]) and nothing is swapped into
//   them, so no control that changes the run ever enters the page.
// - Watch page: the projector toggle (large type, high contrast), remembered per device.
// - Live view: the "Share with a class" dialog opens as a modal; Copy copies the link.
(function () {
  "use strict";

  var root = document.documentElement;
  var PROJECTOR_KEY = "backprop-live-projector";

  // ------------------------------------------------------------ drop control fragments
  document.addEventListener("htmx:oobBeforeSwap", function (ev) {
    var target = ev.detail && ev.detail.target;
    if (target && target.hasAttribute && target.hasAttribute("data-watch-drop")) {
      ev.detail.shouldSwap = false;
    }
  });

  // ------------------------------------------------------------ projector mode
  function setProjector(on) {
    root.classList.toggle("projector", on);
    var btn = document.getElementById("projector-toggle");
    if (btn) btn.setAttribute("aria-pressed", on ? "true" : "false");
  }

  function savedProjector() {
    try { return localStorage.getItem(PROJECTOR_KEY) === "on"; } catch (e) { return false; }
  }

  if (document.getElementById("projector-toggle")) setProjector(savedProjector());

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("#projector-toggle");
    if (!btn) return;
    var on = !root.classList.contains("projector");
    setProjector(on);
    try { localStorage.setItem(PROJECTOR_KEY, on ? "on" : "off"); } catch (e) { /* ignore */ }
  });

  // ------------------------------------------------------------ share dialog
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!ev.detail || !ev.detail.target || ev.detail.target.id !== "share-slot") return;
    var dialog = document.getElementById("share-dialog");
    if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
  });

  function copied(text) {
    var note = document.getElementById("share-copied");
    if (note) note.textContent = text;
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-copy]");
    if (!btn) return;
    var input = document.getElementById(btn.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    // The clipboard API needs a secure context (https or localhost); a classroom server
    // on plain http falls back to the selection and the old copy command.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(
        function () { copied("Copied."); },
        function () { copied("Selected: press Ctrl+C (⌘C) to copy."); }
      );
    } else {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      copied(ok ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
    }
  });
})();
