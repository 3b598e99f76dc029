// The task panel on every page: what is running in a sentence ("Analysis: Album X: 12 tracks — about 4 min left"),
// its progress, the log folded, a cancel button; finished tasks stay a while, faded, and a failure says what to do
// next. The panel can be folded away (remembered in this browser). Polls /api/tasks/panel.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const SHOW_FINISHED_MS = 10 * 60 * 1000;  // a finished task leaves the panel after this
  const FOLDED_KEY = "audiomuse-task-panel";
  const panel = document.getElementById("task-panel");
  if (!panel) return;
  const list = document.getElementById("task-list");
  const empty = document.getElementById("task-panel-empty");
  const errorBox = document.getElementById("task-panel-error");
  const lastBox = document.getElementById("task-last");
  const count = document.getElementById("task-count");
  const toggle = document.getElementById("task-panel-toggle");
  const template = document.getElementById("task-template");
  const { api, element } = window.AudioMuse;
  let clockOffsetMs = 0;
  const STATUS_WORDS = { PENDING: "waiting", STARTED: "running", PROGRESS: "running", SUCCESS: "done",
    FAILURE: "failed", REVOKED: "cancelled" };
  const now = () => Date.now() + clockOffsetMs;

  function fold(folded) {
    document.body.classList.toggle("tasks-folded", folded);
    toggle.setAttribute("aria-expanded", String(!folded));
    toggle.textContent = folded ? "Show" : "Hide";
    try { localStorage.setItem(FOLDED_KEY, folded ? "folded" : "open"); } catch (err) { /* this page only */ }
  }
  toggle.addEventListener("click", () => fold(toggle.getAttribute("aria-expanded") === "true"));
  try { if (localStorage.getItem(FOLDED_KEY) === "folded") fold(true); } catch (err) { /* open */ }

  const formatElapsed = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? `${h}h ` : "") + `${m}m ${String(s % 60).padStart(2, "0")}s`;
  };
  const aboutLeft = (seconds) => (seconds < 90 ? "about a minute left"
    : seconds < 3600 ? `about ${Math.round(seconds / 60)} min left`
      : `about ${(seconds / 3600).toFixed(1)} h left`);

  // What remains, from the pace so far: only once the task has run a while and moved, else no guess
  function eta(task) {
    if (task.finished_at || !task.started_at) return "";
    const elapsed = (now() - Date.parse(task.started_at)) / 1000;
    const done = task.total ? task.current / task.total : task.progress / 100;
    if (!(done > 0.02) || elapsed < 10 || done >= 1) return "";
    return aboutLeft(elapsed * (1 - done) / done);
  }

  function render(task) {
    let node = list.querySelector(`[data-task-id="${task.task_id}"]`);
    if (!node) {
      node = template.content.firstElementChild.cloneNode(true);
      node.dataset.taskId = task.task_id;
      node.querySelector(".task-cancel").addEventListener("click", () => cancel(task.task_id, node));
      list.appendChild(node);
    }
    node.dataset.startedAt = task.started_at || task.created_at;
    node.dataset.finishedAt = task.finished_at || "";
    node.dataset.status = task.status;
    node.classList.toggle("finished", Boolean(task.finished_at));
    node.querySelector(".task-cancel").hidden = Boolean(task.finished_at);
    node.querySelector(".task-type").textContent = task.title || task.task_type;
    const badge = node.querySelector(".task-status");
    badge.textContent = STATUS_WORDS[task.status] || task.status.toLowerCase();
    badge.className = `task-status badge status-${task.status.toLowerCase()}`;
    const bar = node.querySelector(".progress");
    bar.setAttribute("aria-valuenow", String(task.progress));
    bar.setAttribute("aria-label", `${task.title || task.task_type}: ${task.progress}%`);
    node.querySelector(".progress-bar").style.width = `${task.progress}%`;
    node.querySelector(".task-message").textContent = task.status_message || "";
    node.querySelector(".task-eta").textContent = eta(task);
    const next = node.querySelector(".task-next");
    next.hidden = task.status !== "FAILURE";
    if (task.status === "FAILURE") {
      next.replaceChildren("What to do: the cause is above and in the log; mend it and start the task again",
        ...(task.page ? [" from ", element("a", { href: task.page }, `its page (${task.title})`)] : []), ".");
    }
    const entries = task.log || [];
    node.querySelector(".task-log-box summary").textContent = `Log (${entries.length} ${entries.length === 1 ? "line" : "lines"})`;
    node.querySelector(".task-log").replaceChildren(...entries.map((entry) => element("li", {}, entry.message)));
  }

  function tickClocks() {
    for (const node of list.querySelectorAll(".task")) {
      const started = Date.parse(node.dataset.startedAt);
      const finished = node.dataset.finishedAt ? Date.parse(node.dataset.finishedAt) : now();
      if (!Number.isNaN(started)) {
        node.querySelector(".task-elapsed").textContent = formatElapsed((finished - started) / 1000);
      }
    }
  }

  async function cancel(taskId, node) {
    const button = node.querySelector(".task-cancel");
    button.disabled = true;
    try {
      await api(`/api/cancel/${encodeURIComponent(taskId)}`, { method: "POST" });
      errorBox.hidden = true;
    } catch (err) {
      errorBox.textContent = `Could not cancel: ${err.message}`;
      errorBox.hidden = false;
      button.disabled = false;
    }
    poll();
  }

  async function poll() {
    try {
      const answer = await api("/api/tasks/panel");
      if (answer.server_time) clockOffsetMs = Date.parse(answer.server_time) - Date.now();
      const recent = answer.recent.filter((t) => now() - Date.parse(t.finished_at) < SHOW_FINISHED_MS);
      const shown = [...answer.active, ...recent.filter((t) => !answer.active.some((a) => a.task_id === t.task_id))];
      empty.hidden = answer.active.length > 0;
      count.hidden = answer.active.length === 0;
      count.textContent = `${answer.active.length} running`;
      const last = answer.recent[0];
      lastBox.textContent = !answer.active.length && last
        ? `Last task: ${last.title} — ${STATUS_WORDS[last.status] || last.status}` : "";
      const ids = new Set(shown.map((t) => t.task_id));
      for (const node of list.querySelectorAll(".task")) if (!ids.has(node.dataset.taskId)) node.remove();
      shown.forEach(render);
      errorBox.hidden = true;
      tickClocks();
    } catch (err) {
      errorBox.textContent = `Task status unavailable: ${err.message}`;
      errorBox.hidden = false;
    }
  }

  poll();
  setInterval(poll, POLL_MS);
  setInterval(tickClocks, 1000);
})();
