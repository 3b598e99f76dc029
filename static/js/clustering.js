// The clustering page: start a preset or custom run, follow the last run's status, list the generated playlists
// and pin or unpin them.
(() => {
  "use strict";
  const POLL_MS = 2000;
  const { api, serverNow, followTask, say: sayIn, element, playButton, lineChart } = window.AudioMuse;
  const form = document.getElementById("clustering-form");
  const method = document.getElementById("f-clustering_method");
  const message = document.getElementById("clustering-message");
  const status = document.getElementById("run-status");
  const buttons = [document.getElementById("run-preset"), document.getElementById("start-clustering")];
  const ALGORITHMS = { kmeans: "K-Means", dbscan: "DBSCAN", gmm: "GMM", spectral: "Spectral" };
  const wanted = document.getElementById("f-playlists_wanted");
  const keep = document.getElementById("f-top_n_playlists");
  const pinStatus = document.getElementById("pin-status");
  let keepFollows = keep.value === wanted.value;  // "Keep at most" follows "Playlists wanted" until changed by hand
  let watching = null;  // the task id followed while it runs; its end reloads the playlists
  let posting = false;
  let running = false;

  const say = (text, bad) => {
    sayIn(message, text, bad);
    if (text) message.scrollIntoView({ block: "nearest" });
  };

  const formatSeconds = (seconds) => {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (!h && !m) return `${s} s`;
    return (h ? `${h}h ` : "") + `${m}m ${String(s % 60).padStart(2, "0")}s`;
  };

  const labelOf = (input) => (document.querySelector(`label[for="${input.id}"]`)?.textContent || input.name).trim();

  // Only the chosen algorithm's ranges are shown (and sent); the others keep their defaults on the server.
  function showAlgorithm() {
    for (const group of form.querySelectorAll("fieldset[data-algorithm]")) {
      const on = group.dataset.algorithm === method.value;
      group.hidden = !on;
      group.disabled = !on;
    }
  }

  class FieldError extends Error {
    constructor(input, text) { super(text); this.parameter = input.name; }
  }

  function collect() {
    const values = {};
    for (const input of form.querySelectorAll("[data-type]")) {
      const group = input.closest("fieldset[data-algorithm]");
      if (group && group.dataset.algorithm !== method.value) continue;
      if (input.dataset.type === "bool") {
        values[input.name] = input.checked;
      } else if (input.dataset.type === "text") {
        values[input.name] = input.value;
      } else {
        const text = input.value.trim();
        const number = Number(text);
        if (text === "" || !Number.isFinite(number)) throw new FieldError(input, `${labelOf(input)}: enter a number.`);
        values[input.name] = number;
      }
    }
    return values;
  }

  function markInvalid(parameter) {
    const input = parameter && form.elements.namedItem(parameter);
    if (!input || !input.setAttribute) return;
    input.setAttribute("aria-invalid", "true");
    const advanced = input.closest("details");
    if (advanced) advanced.open = true;
    input.focus({ preventScroll: true });
  }

  function setBusy() {
    for (const button of buttons) {
      button.disabled = posting || running;
      button.title = running ? "A clustering run is in progress (cancel it in the task panel)." : "";
    }
  }

  async function start(body) {
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    posting = true;
    setBusy();
    try {
      const started = await api("/api/clustering/start", { method: "POST", body });
      const adjusted = (started.adjustments || []).length ? ` Adjusted to the library: ${started.adjustments.join("; ")}.` : "";
      say(`Clustering started (task ${started.task_id}): ${ALGORITHMS[started.params.clustering_method]}, ` +
          `${started.params.clustering_runs} runs.${adjusted}`);
      watching = started.task_id;
      running = true;
    } catch (err) {
      say(`Could not start: ${err.message}`, true);
      markInvalid(err.parameter);
      // a 409 names the clustering task already running: follow that one
      if (err.body && err.body.task_id) watching = err.body.task_id;
    } finally {
      posting = false;
      setBusy();
    }
    if (watching) follow(watching);
  }

  function describeParams(p) {
    if (!p) return "";
    const size = p.algorithm === "dbscan" ? `eps ${Number(p.eps).toFixed(2)}, min samples ${p.min_samples}`
      : `${p.n_clusters} ${p.algorithm === "gmm" ? "components" : "clusters"}`;
    return `${ALGORITHMS[p.algorithm] || p.algorithm} with ${size}, ${p.pca_components ? `PCA ${p.pca_components}` : "no PCA"}`;
  }

  function showStatus(run) {
    status.dataset.status = run ? run.status : "";
    status.classList.toggle("error", Boolean(run && run.status === "FAILURE"));
    if (!run) { status.textContent = "No clustering has run yet."; return; }
    const r = run.result || {};
    if (!run.finished_at) {
      const since = (serverNow() - Date.parse(run.created_at)) / 1000;
      status.textContent = `Running (${run.status}) for ${formatSeconds(since)}: ${run.message || "waiting for a worker"}`;
    } else if (run.status === "SUCCESS") {
      const p = r.published;
      const refused = p && (p.failures || []).length ? ` ${p.failures.length} refused by the server: ` +
        `${p.failures.map((f) => `${f.name} (${f.action})`).join(", ")}.` : "";
      const published = p ? ` Published to the ${p.server} server: ${p.updated || 0} updated in place, ` +
        `${p.created} created, ${p.deleted} old removed` +
        `${(p.pinned || []).length ? `, ${p.pinned.length} pinned left alone` : ""}.${refused}` : "";
      const failed = r.failed_batches ? ` ${r.failed_batches} batches failed.` : "";
      const covered = r.library_size ? ` The playlists cover ${r.songs_covered} of ${r.library_size} songs ` +
        `(${Math.round(100 * r.songs_covered / r.library_size)} %).` : "";
      const rated = r.quality != null ? `quality ${r.quality}/100 (50 = like a random grouping), ` : "";
      const adjusted = (r.adjustments || []).length ? ` Adjusted to the library: ${r.adjustments.join("; ")}.` : "";
      const history = (r.best_history || []).map((h) => [h.runs_done, h.score]);
      const chart = document.getElementById("score-chart");
      chart.hidden = history.length < 2;
      if (history.length >= 2) {
        lineChart(chart, history, { label: "Best score as the runs went on", x: "run ", format: (v) => v.toFixed(2) });
      }
      status.textContent = `Finished ${new Date(run.finished_at).toLocaleString()}: ${(r.playlists || []).length} ` +
        `playlists, ${rated}best score ${Number(r.best_score).toFixed(3)} (${describeParams(r.best_params)}) after ` +
        `${r.runs} runs in ${formatSeconds(r.elapsed_seconds || 0)}, seed ${r.seed}.${covered}${adjusted}` +
        `${published}${failed}`;
    } else {
      const verb = run.status === "REVOKED" ? "was cancelled" : "failed";
      status.textContent = `The last run ${verb} (${new Date(run.finished_at).toLocaleString()}): ${run.message || ""}`;
    }
  }

  // The status line follows the last run (/api/clustering/last) while it runs; its end reloads the playlists.
  let follows = 0;  // a newer follow (a run just started) replaces an older one
  async function follow(taskId) {
    const mine = ++follows;
    running = true;
    setBusy();
    try {
      await followTask(taskId, (run) => {
        showStatus(run);
        if (run && !run.finished_at) watching = run.task_id;
      }, { url: "/api/clustering/last", read: (answer) => answer.last_run, every: POLL_MS, retryEvery: POLL_MS,
        wanted: () => mine === follows,
        onError: (err) => { status.textContent = `Run status unavailable: ${err.message}`; } });
    } finally {
      if (mine === follows) {
        running = false;
        setBusy();
        watching = null;
        if (!message.classList.contains("error")) say("");  // the status line now tells how the run ended
        loadPlaylists();
      }
    }
  }

  // On load: the last run's status; a run in progress is followed.
  async function showLastRun() {
    try {
      const { last_run: run } = await api("/api/clustering/last");
      showStatus(run);
      if (run && !run.finished_at) follow(run.task_id);
    } catch (err) {
      status.textContent = `Run status unavailable: ${err.message}`;
    }
  }

  // A playlist's pin: a toggle button (Enter or Space) whose pressed state is whether it is pinned.
  function pinButton(name, pinned) {
    const button = element("button", { type: "button", class: "pin-toggle", "aria-pressed": String(pinned),
      "aria-label": `Pin ${name}` }, "Pin");
    button.title = "Pinned: later runs leave this playlist alone";
    button.addEventListener("click", async () => {
      // busy, not disabled: disabling the focused button would drop the keyboard focus
      if (button.getAttribute("aria-busy") === "true") return;
      const pin = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-busy", "true");
      try {
        const { playlist } = await api(`/api/clustering/playlists/${encodeURIComponent(name)}/pin`,
          { method: pin ? "POST" : "DELETE" });
        button.setAttribute("aria-pressed", String(playlist.pinned));
        button.closest("li").classList.toggle("pinned", playlist.pinned);
        pinStatus.textContent = playlist.pinned ? `${name} is pinned: later runs leave it alone.`
          : `${name} is no longer pinned: the next run updates or removes it.`;
        pinStatus.classList.remove("error");
      } catch (err) {
        pinStatus.textContent = `Could not ${pin ? "pin" : "unpin"} ${name}: ${err.message}`;
        pinStatus.classList.add("error");
      } finally {
        button.removeAttribute("aria-busy");
      }
    });
    return button;
  }

  async function loadPlaylists() {
    const list = document.getElementById("playlist-list");
    const empty = document.getElementById("playlists-empty");
    try {
      const [{ playlists }, { playlists: automatic }] = await Promise.all([
        api("/api/playlists?source=clustering"), api("/api/clustering/playlists")]);
      const pinned = new Map(automatic.map((p) => [p.name, p.pinned]));
      list.replaceChildren(...playlists.map((p) => {
        const isPinned = pinned.get(p.name) ?? Boolean(p.pinned);
        const item = element("li", { class: isPinned ? "automatic-playlist pinned" : "automatic-playlist" });
        const box = element("details", { class: "generated-playlist", "data-name": p.name });
        const summary = element("summary");
        summary.append(element("strong", { class: "playlist-name" }, p.name), element("span",
          { class: "playlist-size muted" }, ` ${p.tracks.length} ${p.tracks.length === 1 ? "song" : "songs"}`));
        const songs = element("ol");
        songs.append(...p.tracks.map((t) => {
          const li = element("li");
          const label = `${t.title || t.item_id} — ${t.artist || "unknown artist"}`;
          li.append(playButton(t.item_id, label), ` ${label}`);
          return li;
        }));
        box.append(summary, songs);
        item.append(pinButton(p.name, isPinned), box);
        return item;
      }));
      empty.textContent = "No generated playlists yet.";
      empty.classList.remove("error");
      empty.hidden = playlists.length > 0;
      document.getElementById("playlist-count").textContent = playlists.length ? `(${playlists.length})` : "";
    } catch (err) {
      empty.textContent = `Playlists unavailable: ${err.message}`;
      empty.classList.add("error");
      empty.hidden = false;
    }
  }

  // The preset's values in the form, as a starting point for a custom run.
  function fillForm(values) {
    for (const input of form.querySelectorAll("[data-type]")) {
      if (!(input.name in values)) continue;
      if (input.dataset.type === "bool") input.checked = Boolean(values[input.name]);
      else input.value = String(values[input.name]);
      input.removeAttribute("aria-invalid");
    }
    keepFollows = keep.value === wanted.value;
    showAlgorithm();
  }

  method.addEventListener("change", showAlgorithm);
  wanted.addEventListener("input", () => { if (keepFollows) keep.value = wanted.value; });
  keep.addEventListener("input", () => { keepFollows = keep.value === wanted.value; });
  document.getElementById("preset-to-form").addEventListener("click", () => {
    // The user's AI naming and seed stay: the preset button takes those from the form too.
    const { ai_model_provider: _ai, seed: _seed, ...preset } =
      JSON.parse(document.getElementById("preset-values").textContent);
    fillForm(preset);
    say("The preset's values are in the form below: adjust them and start clustering.");
    form.scrollIntoView({ block: "start" });
  });
  document.getElementById("run-preset").addEventListener("click", () => {
    say("");
    const seed = Number(document.getElementById("f-seed").value) || 0;
    start({ preset: true, ai_model_provider: document.getElementById("f-ai_model_provider").value, seed });
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say("");
    let values;
    try {
      values = collect();
    } catch (err) {
      say(err.message, true);
      markInvalid(err.parameter);
      return;
    }
    start(values);
  });

  showAlgorithm();
  showLastRun();
  loadPlaylists();
})();
