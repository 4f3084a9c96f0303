// The weight history page: the scrubber picks a kept epoch, the server draws that
// frame (GET /ui/runs/{id}/history?epoch=E) and each [data-slot] of the answer
// replaces the inside of the page element with that id. "Play back" steps through
// the kept epochs, 5 a second, one request at a time (a slow answer delays the next).
(function () {
  "use strict";
  // On the history page the scrubber is there at load; on the live view it arrives when
  // its History card is opened (htmx), so set up whenever one appears.
  function setUp() {
  const box = document.getElementById("history-scrubber");
  if (!box || box.dataset.ready) return;
  box.dataset.ready = "true";
  const range = document.getElementById("history-range");
  const play = document.getElementById("history-play");
  const epochs = box.dataset.epochs.split(",").map(Number);
  const url = "/ui/runs/" + encodeURIComponent(box.dataset.runId) + "/history?epoch=";
  const STEP_MS = 200;
  let busy = false;
  let wanted = null; // an index asked for while a request was in flight
  let timer = null;

  function swap(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll("[data-slot]").forEach(function (slot) {
      const target = document.getElementById(slot.dataset.slot);
      if (target) target.replaceChildren(...Array.from(slot.childNodes).map((n) => document.adoptNode(n)));
    });
  }

  async function show(index) {
    if (busy) { wanted = index; return; }
    busy = true;
    const epoch = epochs[index];
    try {
      const response = await fetch(url + epoch, { headers: { "HX-Request": "true" } });
      if (response.ok) {
        swap(await response.text());
        if (!box.dataset.keepUrl) {
          const u = new URL(window.location.href);
          u.searchParams.set("epoch", String(epoch));
          window.history.replaceState(null, "", u);
        }
      }
    } finally {
      busy = false;
      if (wanted !== null) { const next = wanted; wanted = null; show(next); }
    }
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "Play back";
    play.setAttribute("aria-pressed", "false");
  }

  function tick() {
    if (busy) return; // wait for the frame on screen
    const i = Number(range.value);
    if (i >= epochs.length - 1) { stop(); return; }
    range.value = String(i + 1);
    show(i + 1);
  }

  range.addEventListener("input", function () { show(Number(range.value)); });
  play.addEventListener("click", function () {
    if (timer !== null) { stop(); return; }
    if (Number(range.value) >= epochs.length - 1) { range.value = "0"; show(0); }
    play.textContent = "Pause";
    play.setAttribute("aria-pressed", "true");
    timer = setInterval(tick, STEP_MS);
  });
  const live = document.getElementById("history-live");
  if (live) {
    live.addEventListener("click", function () {
      stop();
      const card = box.closest("details");
      if (card) card.open = false;
    });
  }
  }
  setUp();
  document.addEventListener("htmx:afterSettle", setUp);
})();
