// The Schedules page: list schedules with their next and last runs; add, edit, enable/disable, run now, delete;
// the expression's meaning and next run times shown as it is typed.
(() => {
  "use strict";
  const { api, say: sayIn, element, cell, row } = window.AudioMuse;
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

  const say = (text, bad) => sayIn(message, text, bad);

  const when = (iso, timeZone) => {
    if (!iso) return "—";
    try {
      return new Date(iso).toLocaleString(undefined, { timeZone, weekday: "short", year: "numeric",
        month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    } catch (e) {
      return iso;
    }
  };

  function lastRunCell(s) {
    if (!s.last_run) return cell("never");
    const td = cell(element("span", { class: `badge outcome-${s.last_outcome}` }, s.last_outcome));
    td.append(" ", when(s.last_run, s.timezone));
    if (s.last_task_id) {
      td.append(" · ", element("a", { href: `/api/status/${encodeURIComponent(s.last_task_id)}`,
        class: "task-link" }, `task ${s.last_task_id.slice(0, 8)}`));
    }
    if (s.last_message) td.append(element("div", { class: "muted" }, s.last_message));
    return td;
  }

  function render() {
    const tbody = $("cron-table").querySelector("tbody");
    $("cron-empty").hidden = schedules.length > 0;
    $("cron-table").hidden = schedules.length === 0;
    tbody.replaceChildren(...schedules.map((s) => {
      const whenCell = cell(element("code", {}, s.cron_expr));
      whenCell.append(element("div", { class: "muted" }, `${s.description} (${s.timezone})`));
      const toggle = element("input", { type: "checkbox", "aria-label": `Enable ${s.name}` });
      toggle.checked = s.enabled;
      toggle.addEventListener("change", () => save(s.schedule_id, { enabled: toggle.checked },
        `${s.name} ${toggle.checked ? "enabled" : "disabled"}.`));
      const edit = element("button", { type: "button" }, "Edit");
      edit.addEventListener("click", () => startEdit(s));
      const run = element("button", { type: "button" }, "Run now");
      run.addEventListener("click", () => runNow(s));
      const remove = element("button", { type: "button" }, "Delete");
      remove.addEventListener("click", () => removeSchedule(s));
      const actions = cell(edit);
      actions.append(" ", run, " ", remove);
      return row([s.name, TASKS[s.task_type] || s.task_type, whenCell,
        cell(s.enabled ? when(s.next_runs[0], s.timezone) : "disabled", "next-run"), lastRunCell(s), cell(toggle),
        actions], { name: s.name });
    }));
  }

  async function load() {
    try {
      schedules = await api("/api/cron");
      render();
    } catch (err) {
      say(`Could not load the schedules: ${err.message}`, true);
    }
  }

  async function save(id, body, done) {
    try {
      if (id) await api(`/api/cron/${id}`, { method: "PUT", body });
      else await api("/api/cron", { method: "POST", body });
      say(done);
      await load();
      return true;
    } catch (err) {
      // a refused schedule whose expression is valid comes back with its next runs
      const nextRuns = (err.body && err.body.next_runs) || [];
      say(`Not saved: ${err.message}` + (nextRuns.length ?
        ` (the expression is fine: next runs ${nextRuns.map((t) => when(t, zone.value)).join(", ")})` : ""), true);
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
      const started = await api(`/api/cron/${s.schedule_id}/run`, { method: "POST" });
      say(`${s.name}: started ${started.task_type} (task ${started.task_id}).`);
    } catch (err) {
      say(`${s.name} did not start: ${err.message}`, true);
    }
    await load();
  }

  async function removeSchedule(s) {
    if (!window.confirm(`Delete the schedule “${s.name}”? Tasks it started are kept.`)) return;
    try {
      await api(`/api/cron/${s.schedule_id}`, { method: "DELETE" });
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
      const p = await api(`/api/cron/preview?${query}`);
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
    .map((z) => element("option", { value: z })));
  showHint();
  updatePreview();
  load();
  setInterval(load, 15000);  // next/last runs move on their own
})();
