// The task panel on every page: polls /api/active_tasks, shows progress, elapsed time, log and a cancel button.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const panel = document.getElementById("task-panel");
  if (!panel) return;
  const list = document.getElementById("task-list");
  const empty = document.getElementById("task-panel-empty");
  const errorBox = document.getElementById("task-panel-error");
  const lastBox = document.getElementById("task-last");
  const template = document.getElementById("task-template");
  const { api, element } = window.AudioMuse;
  let clockOffsetMs = 0;

  const formatElapsed = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? `${h}h ` : "") + `${m}m ${String(s % 60).padStart(2, "0")}s`;
  };

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
    node.querySelector(".task-cancel").hidden = Boolean(task.finished_at);
    node.querySelector(".task-type").textContent = task.task_type;
    node.querySelector(".task-status").textContent = task.status;
    const bar = node.querySelector(".progress");
    bar.setAttribute("aria-valuenow", String(task.progress));
    node.querySelector(".progress-bar").style.width = `${task.progress}%`;
    node.querySelector(".task-message").textContent = task.status_message || "";
    const log = node.querySelector(".task-log");
    log.replaceChildren(...(task.log || []).map((entry) => element("li", {}, entry.message)));
  }

  function tickClocks() {
    const now = Date.now() + clockOffsetMs;
    for (const node of list.querySelectorAll(".task")) {
      const started = Date.parse(node.dataset.startedAt);
      const finished = node.dataset.finishedAt ? Date.parse(node.dataset.finishedAt) : now;
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
      const active = await api("/api/active_tasks");
      let tasks = active.all_active || [];
      if (active.server_time) clockOffsetMs = Date.parse(active.server_time) - Date.now();
      empty.hidden = tasks.length > 0;
      if (!tasks.length) {
        // Nothing running: keep the last task on show in its final state (progress, status, log).
        const last = await api("/api/last_task");
        lastBox.textContent = last.task_id
          ? `Last task: ${last.task_type} — ${last.status}${last.status_message ? ` (${last.status_message})` : ""}`
          : "";
        if (last.task_id) tasks = [last];
      } else {
        lastBox.textContent = "";
      }
      const ids = new Set(tasks.map((t) => t.task_id));
      for (const node of list.querySelectorAll(".task")) if (!ids.has(node.dataset.taskId)) node.remove();
      tasks.forEach(render);
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
