// The analysis page: start a run, show the last run's summary and failures, browse the analyzed library.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("analysis-form");
  const message = document.getElementById("analysis-message");
  const search = document.getElementById("library-search");
  const rows = document.getElementById("library-rows");
  const more = document.getElementById("library-more");
  const PAGE = 50;
  let offset = 0;
  let lastRunId = null;
  let lastRunStatus = null;

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };

  async function getJson(url, options) {
    const response = await fetch(url, { credentials: "same-origin", ...options });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    message.classList.remove("error");
    try {
      const body = await getJson("/api/analysis/start", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({
          num_recent_albums: Number(data.get("num_recent_albums")),
          top_n_moods: Number(data.get("top_n_moods")),
        }),
      });
      message.textContent = `Analysis started (task ${body.task_id}).`;
    } catch (err) {
      message.textContent = `Could not start: ${err.message}`;
      message.classList.add("error");
    }
  });

  async function loadSummary() {
    const body = await getJson("/api/analysis/summary");
    const run = body.last_run;
    const box = document.getElementById("last-run-summary");
    if (run) {
      const r = run.result || {};
      box.textContent = run.result
        ? `${run.status}: ${r.tracks_analyzed} analyzed, ${r.tracks_skipped} unchanged, ${r.tracks_failed} failed ` +
          `in ${r.albums_total} albums; ${body.analyzed_tracks} tracks in the library, index ${r.index_size ?? 0}.`
        : `${run.status}: ${run.message}`;
      box.dataset.status = run.status;
      if (run.task_id !== lastRunId || run.status !== lastRunStatus) {
        lastRunId = run.task_id; lastRunStatus = run.status;
        loadLibrary(true);
      }
    }
    const analyzing = body.analyzing_now || [];
    document.getElementById("analyzing-box").hidden = analyzing.length === 0;
    document.getElementById("analyzing-now").textContent =
      analyzing.map((a) => `${a.artist} — ${a.title}`).join("; ");
    const failures = body.failures || [];
    document.getElementById("failures-box").hidden = failures.length === 0;
    document.getElementById("failure-count").textContent = String(failures.length);
    document.getElementById("failure-rows").replaceChildren(...failures.map((f) => {
      const tr = document.createElement("tr");
      tr.append(cell(`${f.artist} — ${f.title}`), cell(f.file_path), cell(f.reason));
      return tr;
    }));
  }

  async function loadLibrary(reset) {
    if (reset) offset = 0;
    const params = new URLSearchParams({ q: search.value, limit: String(PAGE), offset: String(offset) });
    const body = await getJson(`/api/tracks?${params}`);
    const fresh = body.tracks.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.itemId = t.item_id;
      tr.append(cell(t.title), cell(t.artist), cell(t.album),
        cell(t.tempo_bpm == null ? "–" : t.tempo_bpm.toFixed(1)),
        cell(t.musical_key ? `${t.musical_key} ${t.scale}` : "–"), cell(t.camelot || "–"),
        cell(t.energy == null ? "" : t.energy.toFixed(2)),
        cell(t.loudness_lufs == null ? "–" : `${t.loudness_lufs.toFixed(1)} LUFS`),
        cell(t.top_tags.map(([name, p]) => `${name} ${p.toFixed(2)}`).join(", ")));
      return tr;
    });
    if (reset) rows.replaceChildren(...fresh); else rows.append(...fresh);
    offset += body.tracks.length;
    document.getElementById("library-total").textContent = `(${body.total} ${body.total === 1 ? "track" : "tracks"})`;
    more.hidden = offset >= body.total;
  }

  let typing;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => loadLibrary(true), 250); });
  more.addEventListener("click", () => loadLibrary(false));
  loadSummary().catch(() => {});
  loadLibrary(true).catch(() => {});
  setInterval(() => loadSummary().catch(() => {}), 2000);
})();
