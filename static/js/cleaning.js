// The cleaning page: preview (dry run), confirm, delete exactly the preview, follow the task, show the summary.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const { api, followTask, say: sayIn, element, fillRows } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const previewButton = $("clean-preview");
  const progressBox = $("clean-progress-box");
  const progress = $("clean-progress");
  const progressText = $("clean-progress-text");
  const message = $("clean-message");
  const result = $("clean-result");
  const confirmBox = $("clean-confirm-box");
  const confirmPanel = $("clean-confirm");
  const deleteButton = $("clean-delete");
  let watching = null;  // the task followed while it runs
  let preview = null;   // the finished dry run the delete button confirms

  const say = (text, bad) => sayIn(message, text, bad);
  const fill = (table, items, cellsOf) => fillRows(table.querySelector("tbody"), items, (i) => cellsOf(i).map(String));

  function showSummary(task) {
    const r = task.result || {};
    result.hidden = false;
    const dry = Boolean(r.dry_run);
    $("clean-result-title").textContent = dry ? "Preview" : "Last cleaning";
    const listed = `The media server lists ${r.tracks_listed} tracks in ${r.albums_listed} albums; ` +
      `${r.analyzed_tracks} tracks ${dry ? "are" : "were"} analyzed. `;
    let text;
    if (r.refused) text = listed + r.refused;
    else if (dry) text = listed + (r.orphan_count ? `${r.orphan_count} are no longer on the server; ` +
      `${r.to_delete.length} would be deleted.` : "Every analyzed track is still on the server: nothing to clean.");
    else text = listed + `Deleted ${r.deleted_count} tracks` + (r.failed_deletions.length ?
      `, ${r.failed_deletions.length} could not be deleted` : "") + (r.failures_removed ?
      `, and ${r.failures_removed} failure records` : "") + "." +
      (r.deleted_count ? ` The similarity index now holds ${r.index_size} tracks; the music map is being updated.` : "");
    $("clean-summary").textContent = text;
    $("clean-summary").classList.toggle("error", Boolean(r.refused));
    $("clean-warnings").replaceChildren(...(r.warnings || []).map((w) => element("li", {}, w)));
    const albums = r.orphaned_albums || [];
    $("clean-albums-title").hidden = $("clean-albums").hidden = !albums.length;
    $("clean-albums-title").textContent = dry || r.refused ? "Orphaned, by artist and album" :
      "Found orphaned, by artist and album";
    fill($("clean-albums"), albums, (a) => [a.artist, a.album, a.tracks]);
    const tracks = r.orphans || [];
    $("clean-tracks-box").hidden = !tracks.length;
    fill($("clean-tracks"), tracks, (t) => [t.title, t.artist, t.album]);
    const problems = r.listing_problems || [];
    $("clean-problems-box").hidden = !problems.length;
    $("clean-problems").replaceChildren(...problems.map((p) => element("li", {}, p)));
    if (problems.length) $("clean-problems-box").open = true;
    preview = dry && !r.refused && (r.to_delete || []).length ? task : null;
    confirmBox.hidden = !preview;
    confirmPanel.hidden = true;
    if (preview) deleteButton.textContent = `Delete these ${r.to_delete.length} tracks`;
  }

  function showProgress(task) {
    progressBox.hidden = false;
    progress.setAttribute("aria-valuenow", String(task.progress));
    progress.querySelector(".progress-bar").style.width = `${task.progress}%`;
    progressText.textContent = task.status_message || task.status;
  }

  function busy(on) {
    previewButton.disabled = on;
    deleteButton.disabled = on;
    progressBox.hidden = !on;
  }

  async function follow(taskId) {
    watching = taskId;
    busy(true);
    const task = await followTask(taskId, showProgress, { every: POLL_MS, wanted: () => watching === taskId,
      onError: (err) => say(`Could not read the task's progress: ${err.message}`, true) });
    if (!task) return;  // a newer run is followed
    watching = null;
    busy(false);
    if (task.status === "SUCCESS") {
      say("");
      showSummary(task);
      if (!task.result.dry_run) $("analyzed-count").textContent = String(task.result.analyzed_tracks -
        task.result.deleted_count);
    } else if (task.status === "REVOKED") {
      say("Cancelled. " + lastLog(task));
    } else {
      say(`Cleaning failed: ${task.status_message}`, true);
    }
  }

  const lastLog = (task) => ((task.log || []).slice(-2).map((l) => l.message).join(" "));

  async function start(body) {
    say("");
    try {
      const started = await api("/api/cleaning/start", { method: "POST", body });
      follow(started.task_id);
    } catch (err) {
      say(`Could not start: ${err.message}`, true);
    }
  }

  previewButton.addEventListener("click", () => {
    confirmBox.hidden = true;
    start({ dry_run: true });
  });
  deleteButton.addEventListener("click", () => {
    const n = preview.result.to_delete.length;
    $("clean-confirm-text").textContent = `Remove ${n} tracks from AudioMuse's database? Their analysis is lost; ` +
      "if the files come back, the next analysis analyzes them again.";
    confirmPanel.hidden = false;
    $("clean-confirm-yes").focus();
  });
  $("clean-confirm-no").addEventListener("click", () => {
    confirmPanel.hidden = true;
    deleteButton.focus();
  });
  $("clean-confirm-yes").addEventListener("click", () => {
    confirmPanel.hidden = true;
    start({ dry_run: false, preview_task_id: preview.task_id });
  });
  $("clean-cancel").addEventListener("click", async () => {
    if (!watching) return;
    try {
      await api(`/api/cancel/${encodeURIComponent(watching)}`, { method: "POST" });
    } catch (err) {
      say(`Could not cancel: ${err.message}`, true);
    }
  });

  // On load: a run in progress is followed, else the last finished run (a preview can still be confirmed).
  (async () => {
    try {
      const { last_run: last } = await api("/api/cleaning/last");
      if (!last) return;
      const task = await api(`/api/status/${encodeURIComponent(last.task_id)}`);
      if (!task.finished_at) follow(task.task_id);
      else if (task.status === "SUCCESS") showSummary(task);
    } catch (err) {
      say(`Could not read the last cleaning run: ${err.message}`, true);
    }
  })();
})();
