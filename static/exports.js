// Import a run from an export.npz (the runs list's "Import .npz"): POST the file's bytes
// to /api/runs/import, then open the new run; a refusal is shown in plain words.
// Also closes the live view's Download menu the way menus close.
(function () {
  "use strict";

  function describe(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
    return "the server refused the file";
  }

  function setup() {
    const input = document.getElementById("import-file");
    const message = document.getElementById("import-message");
    if (!input || !message) return;
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      message.classList.remove("error");
      message.textContent = "Importing " + file.name + "…";
      try {
        const response = await fetch("/api/runs/import", {
          method: "POST",
          headers: { "Content-Type": "application/octet-stream" },
          body: file,
          credentials: "same-origin",
        });
        const body = await response.json().catch(() => ({}));
        if (response.status === 201 && body.id) {
          window.location.assign("/runs/" + encodeURIComponent(body.id));
          return;
        }
        message.textContent = file.name + " was not imported: " + describe(body.detail);
      } catch (error) {
        message.textContent = file.name + " was not imported: " + error.message;
      }
      message.classList.add("error");
      input.value = "";
    });
  }

  // The live view's Download menu (a <details>): a click elsewhere or Escape closes it,
  // and so does choosing a file.
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  function setupMenus() {
    document.addEventListener("click", (event) => {
      const menu = event.target.closest ? event.target.closest("details.menu") : null;
      const chosen = menu && event.target.closest(".menu-items a");
      closeMenus(chosen ? null : menu);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeMenus(null);
    });
  }

  function start() {
    setup();
    setupMenus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
