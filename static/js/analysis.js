// The analysis page: start a run, show the last run's summary and failures, browse the analyzed library.
(() => {
  "use strict";
  const { api, row, fillRows, fmt } = window.AudioMuse;
  const form = document.getElementById("analysis-form");
  const message = document.getElementById("analysis-message");
  const search = document.getElementById("library-search");
  const rows = document.getElementById("library-rows");
  const more = document.getElementById("library-more");
  const PAGE = 50;
  let offset = 0;
  let filter = null;  // {label, params} from a click on a plot
  let lastRunId = null;
  let lastRunStatus = null;


  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    message.classList.remove("error");
    try {
      const body = await api("/api/analysis/start", { method: "POST", body: {
        num_recent_albums: Number(data.get("num_recent_albums")),
        top_n_moods: Number(data.get("top_n_moods")),
        ...(data.get("fast") === "on" ? { fast: true } : {}),  // unticked: the server's rule for a first run
      } });
      message.textContent = `Analysis started (task ${body.task_id}).`;
    } catch (err) {
      message.textContent = `Could not start: ${err.message}`;
      message.classList.add("error");
    }
  });

  const importForm = document.getElementById("import-form");
  const importMessage = document.getElementById("import-message");
  const refusedList = document.getElementById("import-refused");
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("import-file").files[0];
    importMessage.classList.remove("error");
    refusedList.replaceChildren();
    if (!file) {
      importMessage.textContent = "Choose a bundle file first.";
      importMessage.classList.add("error");
      return;
    }
    importMessage.textContent = `Importing ${file.name}…`;
    try {
      const report = await api("/api/analysis/import", { method: "POST", body: file });
      importMessage.textContent = `Imported ${report.imported} of ${report.rows} analyses. The next analysis run ` +
        "gives them to the tracks whose files have the same content.";
      refusedList.replaceChildren(...report.refused.map((r) => {
        const item = document.createElement("li");
        item.textContent = `Refused ${r.rows}: ${r.reason}`;
        return item;
      }));
    } catch (err) {
      importMessage.textContent = `Could not import ${file.name}: ${err.message}`;
      importMessage.classList.add("error");
    }
  });

  const PART_NAMES = { tempo: "tempo", key: "key", energy: "energy and loudness" };
  function showOutdated(outdated) {
    const parts = Object.entries(outdated || {}).filter(([, count]) => count > 0);
    document.getElementById("outdated-box").hidden = parts.length === 0;
    document.getElementById("outdated-text").textContent = parts.map(([part, count], i) =>
      `${count} ${i === 0 ? (count === 1 ? "track has" : "tracks have") : ""} an older ${PART_NAMES[part] || part}`
        .replace("  ", " ")).join(", ") + ".";
  }
  document.getElementById("upgrade-fast").addEventListener("click", async () => {
    message.classList.remove("error");
    try {
      const body = await api("/api/analysis/start", { method: "POST", body: { num_recent_albums: 0,
        top_n_moods: Number(new FormData(form).get("top_n_moods")), fast: false, upgrade_fast: true } });
      message.textContent = `Analysis started (task ${body.task_id}): it analyses the fast ones again in full.`;
    } catch (err) {
      message.textContent = `Could not start: ${err.message}`;
      message.classList.add("error");
    }
  });
  document.getElementById("update-parts").addEventListener("click", async () => {
    message.classList.remove("error");
    try {
      const body = await api("/api/analysis/start", { method: "POST", body: { num_recent_albums: 0,
        top_n_moods: Number(new FormData(form).get("top_n_moods")) } });
      message.textContent = `Analysis started (task ${body.task_id}): it updates the older parts.`;
    } catch (err) {
      message.textContent = `Could not start: ${err.message}`;
      message.classList.add("error");
    }
  });

  async function loadSummary() {
    const body = await api("/api/analysis/summary");
    showOutdated(body.outdated_parts);
    document.getElementById("fast-box").hidden = !body.fast_tracks;
    document.getElementById("fast-count").textContent =
      `${body.fast_tracks} ${body.fast_tracks === 1 ? "track was" : "tracks were"}`;
    const run = body.last_run;
    const box = document.getElementById("last-run-summary");
    if (run) {
      const r = run.result || {};
      box.textContent = run.result
        ? `${run.status}: ${r.tracks_analyzed} analyzed, ${r.tracks_skipped} unchanged, ${r.tracks_failed} failed ` +
          `in ${r.albums_total} albums; ${body.analyzed_tracks} tracks in the library, index ${r.index_size ?? 0}.` +
          (r.tracks_imported ? ` ${r.tracks_imported} of the analyzed came from an imported bundle.` : "") +
          (r.clap_enabled ? ` CLAP: ${r.clap_embedded} embedded, ${r.clap_failed} failed.` : "")
        : `${run.status}: ${run.message}`;
      const providers = Object.entries(r.providers || {});
      const providersLine = document.getElementById("providers-line");
      providersLine.hidden = providers.length === 0;
      providersLine.textContent = "Models ran on: " +
        providers.map(([model, ran]) => `${model} — ${ran.join(", ")}`).join("; ") + ".";
      const fallbacks = r.provider_fallbacks || [];
      document.getElementById("provider-fallbacks-box").hidden = fallbacks.length === 0;
      const list = document.getElementById("provider-fallbacks");
      list.replaceChildren(...fallbacks.map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }));
      const clapFailures = r.clap_failures || [];
      document.getElementById("clap-failures-box").hidden = clapFailures.length === 0;
      document.getElementById("clap-failure-count").textContent = String(r.clap_failed || 0);
      fillRows(document.getElementById("clap-failure-rows"), clapFailures,
        (f) => [`${f.artist} — ${f.title}`, f.path || "", f.reason]);
      box.dataset.status = run.status;
      if (run.task_id !== lastRunId || run.status !== lastRunStatus) {
        const first = lastRunId === null;  // the page's own first load draws the plots already
        lastRunId = run.task_id; lastRunStatus = run.status;
        loadLibrary(true);
        if (!first) loadGlance().catch(() => {});
      }
    }
    const analyzing = body.analyzing_now || [];
    document.getElementById("analyzing-box").hidden = analyzing.length === 0;
    document.getElementById("analyzing-now").textContent =
      analyzing.map((a) => `${a.artist} — ${a.title}`).join("; ");
    const failures = body.failures || [];
    document.getElementById("failures-box").hidden = failures.length === 0;
    document.getElementById("failure-count").textContent = String(failures.length);
    fillRows(document.getElementById("failure-rows"), failures,
      (f) => [`${f.artist} — ${f.title}`, f.file_path, f.reason]);
  }

  // Each load is numbered: when a search or filter changes again before an answer arrives, only the newest
  // answer fills the table, and the table says it is busy (aria-busy) until then.
  let loading = 0;
  async function loadLibrary(reset) {
    const mine = ++loading;
    rows.setAttribute("aria-busy", "true");
    try {
      await fillLibrary(reset, mine);
    } finally {
      if (mine === loading) rows.setAttribute("aria-busy", "false");
    }
  }

  async function fillLibrary(reset, mine) {
    const start = reset ? 0 : offset;
    const params = new URLSearchParams({ q: search.value, limit: String(PAGE), offset: String(start),
      ...(filter ? filter.params : {}) });
    const body = await api(`/api/tracks?${params}`);
    if (mine !== loading) return;
    if (reset) offset = 0;
    const fresh = body.tracks.map((t) => row([t.title, t.artist, t.album, fmt(t.tempo_bpm, 1),
      t.musical_key ? `${t.musical_key} ${t.scale}` : "–", t.camelot || "–",
      t.energy == null ? "" : t.energy.toFixed(2),
      t.loudness_lufs == null ? "–" : `${t.loudness_lufs.toFixed(1)} LUFS`,
      t.top_tags.map(([name, p]) => `${name} ${p.toFixed(2)}`).join(", ")], { itemId: t.item_id }));
    if (reset) rows.replaceChildren(...fresh); else rows.append(...fresh);
    offset += body.tracks.length;
    document.getElementById("library-total").textContent = `(${body.total} ${body.total === 1 ? "track" : "tracks"})`;
    more.hidden = offset >= body.total;
  }

  // --- the library at a glance: plots that filter the table ---------------------------------------------------
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const LAYOUT = { margin: { t: 10, r: 10, b: 40, l: 45 }, height: 260, bargap: 0.05 };
  const round = (value, digits) => Number(value.toFixed(digits));

  function showFilter(label, params) {
    filter = { label, params };
    document.getElementById("library-filter").hidden = false;
    document.getElementById("library-filter-text").textContent = `Showing ${label}.`;
    loadLibrary(true).then(() => rows.closest("section").scrollIntoView({ behavior: "smooth", block: "start" }));
  }
  document.getElementById("library-filter-clear").addEventListener("click", () => {
    filter = null;
    document.getElementById("library-filter").hidden = true;
    loadLibrary(true);
  });

  function histogram(id, bins, { digits, unit, low, high, color }) {
    const node = document.getElementById(id);
    Plotly.react(node, [{ type: "bar", x: bins.map((b) => (b.low + b.high) / 2), y: bins.map((b) => b.count),
      width: bins.map((b) => b.high - b.low), marker: { color },
      customdata: bins.map((b) => [b.low, b.high]),
      hovertemplate: `%{customdata[0]:.${digits}f}–%{customdata[1]:.${digits}f}${unit}: %{y} tracks<extra></extra>` }],
    window.AudioMuse.themed({ ...LAYOUT, xaxis: { title: { text: unit.trim() || "" } },
      yaxis: { title: { text: "tracks" } } }), CONFIG);
    node.removeAllListeners?.("plotly_click");
    node.on("plotly_click", (event) => {
      const [from, to] = event.points[0].customdata;
      showFilter(`tracks with ${id.split("-")[0]} ${round(from, digits)}–${round(to, digits)}${unit}`,
        { [low]: String(from), [high]: String(to) });
    });
  }

  function bars(id, items, param, what, color) {
    const node = document.getElementById(id);
    const shown = [...items].reverse();  // most frequent on top
    Plotly.react(node, [{ type: "bar", orientation: "h", y: shown.map((i) => i.name), x: shown.map((i) => i.count),
      marker: { color }, hovertemplate: "%{y}: %{x} tracks<extra></extra>" }],
    window.AudioMuse.themed({ ...LAYOUT, margin: { ...LAYOUT.margin, l: 110 }, xaxis: { title: { text: "tracks" } } }),
    CONFIG);
    node.removeAllListeners?.("plotly_click");
    node.on("plotly_click", (event) => {
      const name = event.points[0].y;
      showFilter(`tracks whose ${what} is ${name}`, { [param]: name });
    });
  }

  function camelotWheel(keys) {
    const counts = Object.fromEntries(keys.map((k) => [k.key, k.count]));
    const node = document.getElementById("camelot-chart");
    const numbers = Array.from({ length: 12 }, (_, i) => i + 1);
    // The wheel as DJs know it: twelve positions, minor keys (A) on the inner ring, major (B) on the outer one;
    // a wedge grows outward from its ring with the number of tracks in that key.
    const largest = Math.max(1, ...keys.map((k) => k.count));
    const ring = (letter, base, color) => ({ type: "barpolar", name: letter === "A" ? "minor (A)" : "major (B)",
      theta: numbers.map((n) => (n - 1) * 30), width: numbers.map(() => 28), base,
      r: numbers.map((n) => counts[`${n}${letter}`] || 0), customdata: numbers.map((n) => `${n}${letter}`),
      marker: { color, line: { color: "#fff", width: 1 } },
      hovertemplate: "%{customdata}: %{r} tracks<extra></extra>" });
    Plotly.react(node, [ring("A", largest * 0.25, "#7c9cf5"), ring("B", largest * 1.45, "#f59f7c")],
      window.AudioMuse.themed({ ...LAYOUT, margin: { t: 20, r: 20, b: 20, l: 20 }, showlegend: true,
        legend: { orientation: "h" }, polar: { bgcolor: "rgba(0,0,0,0)", angularaxis: { direction: "clockwise",
          rotation: 90, tickvals: numbers.map((n) => (n - 1) * 30), ticktext: numbers.map(String) },
        radialaxis: { visible: false, range: [0, largest * 2.5] } } }), CONFIG);
    node.removeAllListeners?.("plotly_click");
    node.on("plotly_click", (event) => pickKey(event.points[0].customdata));
    const buttons = document.getElementById("camelot-keys");
    const order = (key) => parseInt(key, 10) * 2 + (key.endsWith("B") ? 1 : 0);
    buttons.replaceChildren(...[...keys].sort((a, b) => order(a.key) - order(b.key)).map((k) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${k.key} (${k.count})`;
      button.addEventListener("click", () => pickKey(k.key));
      return button;
    }));
  }
  const pickKey = (key) => showFilter(`tracks in ${key}`, { camelot: key });

  async function loadGlance() {
    const stats = await api("/api/analysis/library_stats");
    document.getElementById("at-a-glance").hidden = stats.tracks === 0;
    if (stats.tracks === 0) return;
    histogram("tempo-chart", stats.tempo, { digits: 0, unit: " BPM", low: "min_bpm", high: "max_bpm",
      color: "#3b5bdb" });
    camelotWheel(stats.camelot);
    histogram("energy-chart", stats.energy, { digits: 2, unit: "", low: "min_energy", high: "max_energy",
      color: "#2b8a3e" });
    histogram("loudness-chart", stats.loudness, { digits: 0, unit: " LUFS", low: "min_loudness",
      high: "max_loudness", color: "#862e9c" });
    bars("tags-chart", stats.tags, "tag", "top three tags include", "#e8590c");
    bars("moods-chart", stats.moods, "mood", "strongest mood", "#1098ad");
  }

  let typing;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => loadLibrary(true), 250); });
  more.addEventListener("click", () => loadLibrary(false));
  loadSummary().catch(() => {});
  loadLibrary(true).catch(() => {});
  loadGlance().catch(() => {});
  setInterval(() => loadSummary().catch(() => {}), 2000);
})();
