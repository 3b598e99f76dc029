// Smart playlists: a rule builder (one row per condition) and the rule's text, kept in step through the server's
// parser; a live preview with the count; save, refresh, edit and delete.
(() => {
  "use strict";
  const { api, element, cell, row, say: sayIn } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const FIELDS = JSON.parse($("smart-fields").textContent);
  const NUMERIC = new Set(["bpm", "year", "duration"]);
  const LABELS = { bpm: "tempo (BPM)", year: "year", duration: "length (s)", energy: "energy", key: "key (Camelot)",
    tag: "tag", mood: "mood", genre: "genre", artist: "artist", album: "album" };
  const list = $("smart-conditions");
  const ruleBox = $("smart-rule");
  const ruleStatus = $("smart-rule-status");
  const message = $("smart-message");
  let timer = null;
  let playlists = [];
  let edited = "rows";  // which form of the rule the user changed last: the other one follows it
  let previews = 0;  // only the latest preview's answer is shown

  function select(options, value, label) {
    const node = element("select", { "aria-label": label });
    for (const [v, text] of options) node.append(element("option", { value: v }, text));
    if (value !== undefined) node.value = value;
    return node;
  }

  // One condition row: NOT, field, operator, value(s), remove.
  function addRow(condition = { field: "bpm", op: "range", values: [120, 130], negated: false }) {
    const row = element("div", { class: "inline smart-row", role: "listitem" });
    const not = element("input", { type: "checkbox", "aria-label": "NOT" });
    not.checked = Boolean(condition.negated);
    const notLabel = element("label", { class: "check" });
    notLabel.append(not, " not");
    const field = select(FIELDS.map((f) => [f, LABELS[f] || f]), condition.field, "Field");
    const op = element("select", { "aria-label": "Operator" });
    const values = element("span", { class: "smart-values" });
    const remove = element("button", { type: "button", "aria-label": "Remove this condition" }, "✕");
    function fillOperator(selected) {
      const options = NUMERIC.has(field.value) ?
        [["range", "between"], ["=", "="], ["<", "<"], ["<=", "≤"], [">", ">"], [">=", "≥"]] : [["=", "is"]];
      op.replaceChildren(...options.map(([v, t]) => element("option", { value: v }, t)));
      op.value = options.some(([v]) => v === selected) ? selected : options[0][0];
    }
    function fillValues(given) {
      values.replaceChildren();
      if (field.value === "energy") {
        values.append(select([["high", "high"], ["medium", "medium"], ["low", "low"]], given[0] || "high", "Value"));
      } else if (NUMERIC.has(field.value) && op.value === "range") {
        values.append(element("input", { type: "number", step: "any", "aria-label": "From", value: given[0] ?? "" }),
          " and ", element("input", { type: "number", step: "any", "aria-label": "To", value: given[1] ?? "" }));
      } else {
        values.append(element("input", { "aria-label": "Value", value: field.value === "key" ? given.join(",") :
          (given[0] ?? ""), placeholder: field.value === "key" ? "7A,8A" : "" }));
      }
    }
    fillOperator(condition.op);
    fillValues(condition.values || []);
    field.addEventListener("change", () => { fillOperator(op.value); fillValues([]); changed(); });
    op.addEventListener("change", () => { fillValues([]); changed(); });
    values.addEventListener("input", changed);
    values.addEventListener("change", changed);
    not.addEventListener("change", changed);
    remove.addEventListener("click", () => { row.remove(); changed(); });
    row.append(notLabel, field, op, values, remove);
    row.read = () => {
      const inputs = [...values.querySelectorAll("input, select")].map((i) => i.value.trim());
      let vals = inputs;
      if (field.value === "key") vals = inputs[0].split(",").map((v) => v.trim()).filter(Boolean);
      return { field: field.value, op: op.value, values: vals, negated: not.checked };
    };
    list.append(row);
    return row;
  }

  const conditions = () => [...list.children].map((row) => row.read());

  function settings() {
    return { order_by: $("smart-order").value, seed: Number($("smart-seed").value || 1),
      size_cap: Number($("smart-cap").value || 100) };
  }

  function showPreview(p) {
    $("smart-preview").textContent = `${p.count} songs match; the playlist holds ${p.playlist_size}.`;
    $("smart-preview-tracks").replaceChildren(...p.tracks.slice(0, 10).map((t) =>
      element("li", {}, `${t.title} — ${t.artist}` + (t.tempo_bpm ? ` (${Math.round(t.tempo_bpm)} BPM)` : ""))));
  }

  // The preview of the rule as the rows or the text state it; the answer, or { error } with the error shown.
  async function previewFrom(body, { fromText, saving = false }) {
    const mine = ++previews;
    try {
      const p = await api("/api/smart_playlists/preview", { method: "POST", body: { ...body, ...settings() } });
      if (mine !== previews) return p;
      ruleBox.removeAttribute("aria-invalid");
      ruleStatus.textContent = "";
      ruleStatus.classList.remove("error");
      if (fromText) {
        list.replaceChildren();
        for (const c of p.conditions) addRow(c);
      } else if (saving || document.activeElement !== ruleBox) {
        ruleBox.value = p.rule;
      }
      showPreview(p);
      return p;
    } catch (err) {
      if (mine !== previews) return { error: err.message };
      ruleStatus.textContent = err.message;
      ruleStatus.classList.add("error");
      if (fromText) ruleBox.setAttribute("aria-invalid", "true");
      $("smart-preview").textContent = "";
      $("smart-preview-tracks").replaceChildren();
      return { error: err.message };
    }
  }

  const previewEdited = (options = {}) => edited === "text" ?
    previewFrom({ rule: ruleBox.value }, { fromText: true, ...options }) :
    previewFrom({ conditions: conditions() }, { fromText: false, ...options });

  function changed() {
    edited = "rows";
    clearTimeout(timer);
    timer = setTimeout(previewEdited, 300);
  }

  ruleBox.addEventListener("input", () => {
    edited = "text";
    clearTimeout(timer);
    timer = setTimeout(previewEdited, 400);
  });
  for (const id of ["smart-order", "smart-seed", "smart-cap"]) {
    $(id).addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(previewEdited, 300); });
  }
  $("smart-add").addEventListener("click", () => {
    const row = addRow({ field: "tag", op: "=", values: [""], negated: false });
    row.querySelector("select").focus();
  });

  const say = (text, bad) => sayIn(message, text, bad);

  function resetForm() {
    $("smart-id").value = "";
    $("smart-name").value = "";
    $("smart-form-title").textContent = "New smart playlist";
    $("smart-cancel-edit").hidden = true;
    list.replaceChildren();
    ruleBox.value = "";
    $("smart-preview").textContent = "";
    $("smart-preview-tracks").replaceChildren();
    addRow();
    changed();
  }

  $("smart-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("smart-id").value;
    // Never publish what the user did not see: bring the rows and the text in step first (the one edited last
    // leads), refuse while it does not parse, and send both: the server checks they are the same rule.
    clearTimeout(timer);
    const checked = await previewEdited({ saving: true });
    if (checked.error) {
      say(`Not saved: the rule is not valid — ${checked.error}`, true);
      if (edited === "text") ruleBox.focus();
      return;
    }
    const body = { name: $("smart-name").value.trim(), rule: ruleBox.value, conditions: conditions(), ...settings() };
    try {
      const saved = await api(id ? `/api/smart_playlists/${id}` : "/api/smart_playlists",
        { method: id ? "PUT" : "POST", body });
      say(`Saved ${saved.name}: publishing ${saved.playlist_name}.`);
      resetForm();
      await load();
    } catch (err) {
      say(`Not saved: ${err.message}`, true);
    }
  });
  $("smart-cancel-edit").addEventListener("click", resetForm);

  function edit(p) {
    $("smart-id").value = p.smart_playlist_id;
    $("smart-name").value = p.name;
    $("smart-order").value = p.order_by;
    $("smart-seed").value = p.seed;
    $("smart-cap").value = p.size_cap;
    list.replaceChildren();
    for (const c of p.conditions) addRow(c);
    ruleBox.value = p.rule;
    $("smart-form-title").textContent = `Edit “${p.name}”`;
    $("smart-cancel-edit").hidden = false;
    changed();
    $("smart-name").focus();
  }

  async function load() {
    try {
      playlists = (await api("/api/smart_playlists")).smart_playlists;
    } catch (err) {
      say(`Could not load the smart playlists: ${err.message}`, true);
      return;
    }
    $("smart-empty").hidden = playlists.length > 0;
    $("smart-table").hidden = playlists.length === 0;
    $("smart-table").querySelector("tbody").replaceChildren(...playlists.map((p) => {
      const refreshed = p.last_refreshed_at ? new Date(p.last_refreshed_at).toLocaleString() : "not yet";
      const change = p.last_added != null ? ` (+${p.last_added} −${p.last_removed})` : "";
      const actions = cell();
      const tr = row([p.playlist_name, p.rule,
        cell(p.last_count == null ? "–" : `${p.last_count} of ${p.last_matches}`, "smart-count"),
        p.last_error ? cell(`${refreshed}: ${p.last_error}`, "error") : cell(refreshed + change), actions],
      { name: p.name });
      const editButton = element("button", { type: "button" }, "Edit");
      editButton.addEventListener("click", () => edit(p));
      const refreshButton = element("button", { type: "button" }, "Refresh");
      refreshButton.addEventListener("click", () => refresh(p.smart_playlist_id, p.name));
      const deleteButton = element("button", { type: "button" }, "Delete");
      deleteButton.addEventListener("click", async () => {
        if (!window.confirm(`Delete ${p.playlist_name} here and on the media server?`)) return;
        try {
          const done = await api(`/api/smart_playlists/${p.smart_playlist_id}`, { method: "DELETE" });
          say(`Deleted ${p.name}.` + (done.warning ? ` ${done.warning}` : ""));
        } catch (err) { say(`Not deleted: ${err.message}`, true); }
        load();
      });
      actions.append(editButton, " ", refreshButton, " ", deleteButton);
      return tr;
    }));
  }

  async function refresh(id, name) {
    try {
      const started = await api("/api/smart_playlists/refresh", { method: "POST",
        body: id ? { smart_playlist_id: id } : {} });
      say(`Refreshing ${name || "every smart playlist"} (task ${started.task_id}).`);
    } catch (err) {
      say(`Not refreshed: ${err.message}`, true);
    }
  }
  $("smart-refresh-all").addEventListener("click", () => refresh(null));

  resetForm();
  load();
  setInterval(load, 5000);  // refreshes finish in the background
})();
