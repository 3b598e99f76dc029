// The media-server form on the Settings page: load (secrets masked), test the connection, save.
(() => {
  "use strict";
  const form = document.getElementById("mediaserver-form");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const result = document.getElementById("ms-result");
  const typeSelect = document.getElementById("ms-type");
  const FIELDS = ["url", "host", "port", "user", "music_dir", "music_libraries", "path_mapping"];

  function showFieldsFor(type) {
    for (const label of form.querySelectorAll("label[data-for]")) {
      label.hidden = !label.dataset.for.split(" ").includes(type);
    }
    document.getElementById("secret-label").textContent = ["navidrome", "mpd", "lyrion"].includes(type) ? "Password" : "API key";
    document.getElementById("music-dir-label").textContent =
      type === "mpd" ? "MPD music directory as seen from here" : "Music folder";
  }

  function fill(body) {
    typeSelect.value = body.type;
    for (const name of FIELDS) {
      if (form.elements[name]) form.elements[name].value = body[name] ?? "";
    }
    form.elements.secret.value = "";
    document.getElementById("secret-hint").textContent = body.secret_set ? `saved: ${body.secret_hint}` : "";
    showFieldsFor(body.type);
  }

  function payload() {
    const data = { type: typeSelect.value };
    for (const label of form.querySelectorAll("label[data-for]")) {
      if (label.hidden) continue;
      for (const input of label.querySelectorAll("input")) data[input.name] = input.value;
    }
    return data;
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload()),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  function say(text, isError) {
    result.textContent = text;
    result.classList.toggle("error", Boolean(isError));
  }

  typeSelect.addEventListener("change", () => showFieldsFor(typeSelect.value));
  document.getElementById("ms-test").addEventListener("click", async () => {
    say("Connecting…");
    try {
      const body = await post("/api/settings/mediaserver/test");
      if (body.ok) say(`Connected: ${body.album_count} albums in ${body.libraries.join(", ") || "no library"}.`);
      else say(`Connection failed: ${body.error}`, true);
    } catch (err) {
      say(err.message, true);
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      fill(await post("/api/settings/mediaserver"));
      say("Saved. New analysis runs use these settings.");
    } catch (err) {
      say(`Not saved: ${err.message}`, true);
    }
  });
  fetch("/api/settings/mediaserver", { credentials: "same-origin" })
    .then((r) => r.json()).then(fill).catch((err) => say(err.message, true));
})();
