// The media-server form on the Settings page: load (secrets masked), test the connection, save.
(() => {
  "use strict";
  const form = document.getElementById("mediaserver-form");
  if (!form) return;
  const { api, say: sayIn } = window.AudioMuse;
  const result = document.getElementById("ms-result");
  const typeSelect = document.getElementById("ms-type");
  const FIELDS = [...form.querySelectorAll("label[data-for] input")].map((input) => input.name)
    .filter((name) => name !== "secret");

  // Which inputs a server type has, and their labels, come from the adapters' declared settings (data-for/labels).
  function showFieldsFor(type) {
    for (const label of form.querySelectorAll("label[data-for]")) {
      label.hidden = !label.dataset.for.split(" ").includes(type);
      const text = JSON.parse(label.dataset.labels)[type];
      if (text) label.querySelector(".field-label").textContent = text;
    }
  }

  // Fields changed before the saved settings arrived keep what was entered (the load must not wipe it).
  const changedBeforeLoad = new Set();
  const noteChange = (event) => changedBeforeLoad.add(event.target.name);
  form.addEventListener("input", noteChange);

  function fill(body, keep = new Set()) {
    if (!keep.has(typeSelect.name)) typeSelect.value = body.type;
    for (const name of FIELDS) {
      if (form.elements[name] && !keep.has(name)) form.elements[name].value = body[name] ?? "";
    }
    if (!keep.has("secret")) form.elements.secret.value = "";
    document.getElementById("secret-hint").textContent = body.secret_set ? `saved: ${body.secret_hint}` : "";
    showFieldsFor(typeSelect.value);
  }

  function payload() {
    const data = { type: typeSelect.value };
    for (const label of form.querySelectorAll("label[data-for]")) {
      if (label.hidden) continue;
      for (const input of label.querySelectorAll("input")) data[input.name] = input.value;
    }
    return data;
  }

  const post = (url) => api(url, { method: "POST", body: payload() });
  const say = (text, isError) => sayIn(result, text, isError);

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
  api("/api/settings/mediaserver")
    .then((body) => fill(body, changedBeforeLoad))
    .catch((err) => say(err.message, true))
    .finally(() => form.removeEventListener("input", noteChange));
})();

// The blocklists and scope on the Settings page: one name per line; the longest song in minutes (the API: seconds).
(() => {
  "use strict";
  const form = document.getElementById("exclusions-form");
  if (!form) return;
  const { api, say: sayIn } = window.AudioMuse;
  const result = document.getElementById("exclusions-result");
  const LISTS = ["artists", "albums", "genres", "folders", "libraries", "scope_folders"];
  const say = (text, isError) => sayIn(result, text, isError);

  // Fields typed into before the saved values arrived keep what was typed (the load must not wipe it).
  const typedBeforeLoad = new Set();
  const noteTyping = (event) => typedBeforeLoad.add(event.target.name);
  form.addEventListener("input", noteTyping);

  function fill(body, keep = new Set()) {
    for (const name of LISTS) {
      if (!keep.has(name)) form.elements[name].value = (body[name] || []).join("\n");
    }
    const seconds = body.max_duration;
    if (!keep.has("max_duration_minutes")) {
      form.elements.max_duration_minutes.value = seconds ? String(Math.round((seconds / 60) * 100) / 100) : "";
    }
  }

  function payload() {
    const data = {};
    for (const name of LISTS) {
      data[name] = form.elements[name].value.split("\n").map((line) => line.trim()).filter(Boolean);
    }
    const minutes = form.elements.max_duration_minutes.value.trim();
    // a value that is no number goes to the server as typed, which names the field in its answer
    data.max_duration = minutes === "" ? null : Number.isFinite(Number(minutes)) ? Number(minutes) * 60 : minutes;
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      fill(await api("/api/settings/exclusions", { method: "POST", body: payload() }));
      say("Saved. Every list leaves these out from now on.");
    } catch (err) {
      say(`Not saved: ${err.message}`, true);
    }
  });
  api("/api/settings/exclusions")
    .then((body) => fill(body, typedBeforeLoad))
    .catch((err) => say(err.message, true))
    .finally(() => form.removeEventListener("input", noteTyping));
})();
