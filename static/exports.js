// Import a run from an export.npz (the runs list's "Import .npz"): POST the file's bytes
// to /api/runs/import, then open the new run; a refusal is shown in plain words.
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

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
