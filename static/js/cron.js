// The Schedules page: list schedules with their next and last runs; add, edit, enable/disable, run now, delete;
// the expression's meaning and next run times shown as it is typed.
(() => {
  "use strict";
  const { api } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const TASKS = JSON.parse($("cron-task-types").textContent);
  const form = $("cron-form");
  const message = $("cron-message");
  const expr = $("cron-expr");
  const zone = $("cron-timezone");
  const preview = $("cron-preview");
  const task = $("cron-task");
  let schedules = [];
  let previewTimer = null;

  // The server's errors carry the field they are about and, when the expression is valid, its next runs.
  async function request(url, options = {}) {
    const init = { method: options.method || "GET", credentials: "same-origin",
      headers: { "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content } };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(url, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const err = new Error(data.error || `${response.status} ${response.statusText}`);
      err.parameter = data.parameter;
      err.nextRuns = data.next_runs;
      throw err;
    }
    return data;
  }

  const say = (text, bad) => {
    message.textContent = text;
    message.classList.toggle("error", Boolean(bad));
  };

  const when = (iso, timeZone) => {
    if (!iso) return "—";
    try {
      return new Date(iso).toLocaleString(undefined, { timeZone, weekday: "short", year: "numeric",
        month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    } catch (e) {
      return iso;
    }
  };

  function element(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function lastRunCell(s) {
    const td = element("td");
    if (!s.last_run) {
      td.textContent = "never";
      return td;
    }
    const badge = element("span", s.last_outcome, { class: `badge outcome-${s.last_outcome}` });
    td.append(badge, " ", when(s.last_run, s.timezone));
    if (s.last_task_id) {
      td.append(" · ", element("a", `task ${s.last_task_id.slice(0, 8)}`,
        { href: `/api/status/${encodeURIComponent(s.last_task_id)}`, class: "task-link" }));
    }
    if (s.last_message) td.append(element("div", s.last_message, { class: "muted" }));
    return td;
  }

  function render() {
    const tbody = $("cron-table").querySelector("tbody");
    $("cron-empty").hidden = schedules.length > 0;
    $("cron-table").hidden = schedules.length === 0;
    tbody.replaceChildren(...schedules.map((s) => {
      const tr = element("tr", undefined, { "data-name": s.name });
      tr.append(element("td", s.name), element("td", TASKS[s.task_type] || s.task_type));
      const whenCell = element("td");
      whenCell.append(element("code", s.cron_expr), element("div", `${s.description} (${s.timezone})`,
        { class: "muted" }));
      tr.append(whenCell, element("td", s.enabled ? when(s.next_runs[0], s.timezone) : "disabled",
        { class: "next-run" }), lastRunCell(s));
      const toggleCell = element("td");
      const toggle = element("input", undefined, { type: "checkbox", "aria-label": `Enable ${s.name}` });
      toggle.checked = s.enabled;
      toggle.addEventListener("change", () => save(s.schedule_id, { enabled: toggle.checked },
        `${s.name} ${toggle.checked ? "enabled" : "disabled"}.`));
      toggleCell.append(toggle);
      const actions = element("td");
      const edit = element("button", "Edit", { type: "button" });
      edit.addEventListener("click", () => startEdit(s));
      const run = element("button", "Run now", { type: "button" });
      run.addEventListener("click", () => runNow(s));
      const remove = element("button", "Delete", { type: "button" });
      remove.addEventListener("click", () => removeSchedule(s));
      actions.append(edit, " ", run, " ", remove);
      tr.append(toggleCell, actions);
      return tr;
    }));
  }

  async function load() {
    try {
      schedules = await request("/api/cron");
      render();
    } catch (err) {
      say(`Could not load the schedules: ${err.message}`, true);
    }
  }

  async function save(id, body, done) {
    try {
      if (id) await request(`/api/cron/${id}`, { method: "PUT", body });
      else await request("/api/cron", { method: "POST", body });
      say(done);
      await load();
      return true;
    } catch (err) {
      say(`Not saved: ${err.message}` + (err.nextRuns && err.nextRuns.length ?
        ` (the expression is fine: next runs ${err.nextRuns.map((t) => when(t, zone.value)).join(", ")})` : ""), true);
      const field = { cron_expr: expr, timezone: zone, name: $("cron-name"), task_type: task }[err.parameter] ||
        (String(err.parameter || "").startsWith("params") ? $("cron-params") : null);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
      await load();
      return false;
    }
  }

  function startEdit(s) {
    $("cron-id").value = s.schedule_id;
    $("cron-name").value = s.name;
    task.value = s.task_type;
    expr.value = s.cron_expr;
    zone.value = s.timezone;
    $("cron-params").value = JSON.stringify(s.params);
    $("cron-enabled").checked = s.enabled;
    $("cron-form-title").textContent = `Edit “${s.name}”`;
    $("cron-cancel-edit").hidden = false;
    showHint();
    updatePreview();
    $("cron-name").focus();
  }

  function stopEdit() {
    form.reset();
    $("cron-id").value = "";
    $("cron-params").value = "{}";
    zone.value = zone.defaultValue;
    $("cron-form-title").textContent = "Add a schedule";
    $("cron-cancel-edit").hidden = true;
    showHint();
    updatePreview();
  }

  async function runNow(s) {
    try {
      const started = await request(`/api/cron/${s.schedule_id}/run`, { method: "POST" });
      say(`${s.name}: started ${started.task_type} (task ${started.task_id}).`);
    } catch (err) {
      say(`${s.name} did not start: ${err.message}`, true);
    }
    await load();
  }

  async function removeSchedule(s) {
    if (!window.confirm(`Delete the schedule “${s.name}”? Tasks it started are kept.`)) return;
    try {
      await request(`/api/cron/${s.schedule_id}`, { method: "DELETE" });
      say(`Deleted ${s.name}.`);
    } catch (err) {
      say(`Could not delete: ${err.message}`, true);
    }
    await load();
  }

  async function updatePreview() {
    expr.removeAttribute("aria-invalid");
    const query = new URLSearchParams({ cron_expr: expr.value, timezone: zone.value });
    try {
      const p = await request(`/api/cron/preview?${query}`);
      preview.classList.remove("error");
      preview.textContent = `${p.description}. Next: ${p.next_runs.map((t) => when(t, p.timezone)).join(" · ")}`;
    } catch (err) {
      preview.classList.add("error");
      preview.textContent = err.message;
    }
  }

  const schedulePreview = () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(updatePreview, 250);
  };

  function showHint() {
    $("cron-params-hint").textContent = task.selectedOptions[0]?.dataset.hint || "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    let params;
    try {
      params = JSON.parse($("cron-params").value.trim() || "{}");
    } catch (err) {
      say("Parameters: not valid JSON (e.g. {} or {\"dry_run\": true}).", true);
      $("cron-params").setAttribute("aria-invalid", "true");
      $("cron-params").focus();
      return;
    }
    const id = $("cron-id").value;
    const body = { name: $("cron-name").value.trim(), task_type: task.value, cron_expr: expr.value,
      timezone: zone.value.trim(), enabled: $("cron-enabled").checked, params };
    if (await save(id, body, `Saved ${body.name}.`)) stopEdit();
  });
  $("cron-cancel-edit").addEventListener("click", stopEdit);
  for (const button of form.querySelectorAll("button[data-expr]")) {
    button.addEventListener("click", () => {
      expr.value = button.dataset.expr;
      updatePreview();
      expr.focus();
    });
  }
  expr.addEventListener("input", schedulePreview);
  zone.addEventListener("input", schedulePreview);
  task.addEventListener("change", showHint);

  // Suggest the browser's zone first, then every zone the browser knows.
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  $("cron-zones").replaceChildren(...[...new Set([local, "UTC", ...zones])].filter(Boolean)
    .map((z) => element("option", undefined, { value: z })));
  showHint();
  updatePreview();
  load();
  setInterval(load, 15000);  // next/last runs move on their own
})();
