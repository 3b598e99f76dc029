// The music map: one WebGL scatter of the library coloured by top tag, a legend that hides and shows tags, a
// selection filled by clicks and lassos, a search that highlights a song, song paths drawn on the map, and the
// playlist box for the selection.
(() => {
  "use strict";
  const { api, followTask, sleep, say, element, picker, playlistBox, playButton } = window.AudioMuse;
  const settings = window.MAP_SETTINGS;
  const $ = (id) => document.getElementById(id);
  const plot = $("map-plot");
  const message = $("map-message");
  const selectionMessage = $("selection-message");
  const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad", "#f08c00", "#5c940d",
    "#d6336c", "#364fc7", "#0ca678", "#ae3ec9", "#e67700", "#1c7ed6", "#a61e4d", "#74b816", "#4263eb", "#f76707",
    "#099268", "#862e9c"];
  const UNTAGGED = "(no tag)";

  const state = {
    percent: 25, items: [], byId: new Map(), tags: [], colours: new Map(), hidden: new Set(),
    selection: [], highlight: null, highlightOn: true, paths: [], loading: 0, rendered: false,
  };

  const tagOf = (item) => item.top_mood || UNTAGGED;
  const colourOf = (tag, i) => PALETTE[i] || `hsl(${Math.round((i * 137.508) % 360)}, 55%, 45%)`;

  // --- loading ---------------------------------------------------------------------------------------------
  // The map (body of /api/map); a 503 means it is being prepared: say so and ask again.
  async function fetchMap(percent) {
    for (let attempt = 0; ; attempt += 1) {
      const early = window.MAP_PREFETCH;
      window.MAP_PREFETCH = null;
      try {
        return await (attempt === 0 && early && early.percent === percent ? early.map
          : api(`/api/map?percent=${percent}`));
      } catch (err) {
        if (err.status !== 503 || attempt >= 60) throw err;
        say(message, (err.body && err.body.error) || "The map is being prepared…");
        await sleep(2000);
      }
    }
  }

  async function load(percent) {
    const mine = ++state.loading;
    state.percent = percent;
    document.querySelectorAll(".percent").forEach((b) => b.setAttribute("aria-pressed",
      String(Number(b.dataset.percent) === percent)));
    say(message, `Loading ${percent} % of the map…`);
    let body;
    try {
      body = await fetchMap(percent);
    } catch (err) {
      if (mine === state.loading) say(message, `The map could not be loaded: ${err.message}`, true);
      return;
    }
    if (mine !== state.loading) return;  // a newer load replaced this one
    state.items = body.items;
    state.byId = new Map(body.items.map((item) => [item.item_id, item]));
    const counts = new Map();
    body.items.forEach((item) => counts.set(tagOf(item), (counts.get(tagOf(item)) || 0) + 1));
    state.tags = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    state.tags.forEach(([tag]) => { if (!state.colours.has(tag)) state.colours.set(tag, colourOf(tag, state.colours.size)); });
    renderLegend();
    render();
    describe(body);
    if (!body.items.length) {
      message.replaceChildren(body.message || "Nothing has been analyzed yet.", " ",
        element("a", { href: "/" }, "Go to Analysis"));
    } else {
      say(message, `${body.count} of ${body.total} songs shown (${percent} %).`);
    }
    showJobState();
  }

  function describe(body) {
    if (!body.total) { $("map-projection").textContent = ""; return; }
    const parts = [`Projection: ${body.projection.toUpperCase()}`];
    if (body.built_at) parts.push(`built ${body.built_at.replace("T", " ").slice(0, 16)}`);
    if (body.placed_since_build) parts.push(`${body.placed_since_build} songs placed since`);
    if (body.placed_now) parts.push(`${body.placed_now} new songs placed by their nearest neighbours`);
    if (body.fallback_reason) parts.push(`PCA because ${body.fallback_reason}`);
    $("map-projection").textContent = parts.join(" · ");
  }

  async function showJobState() {
    try {
      const status = await api("/api/map/status");
      const job = status.last_job;
      if (job && job.status === "FAILURE") {
        const served = status.served ? status.served.projection.toUpperCase() : "nothing";
        say($("map-projection"), `The last map build failed: ${job.message}. Showing the ${served} map meanwhile.`,
          true);
      }
    } catch (err) { /* the map itself loaded; the job state is extra */ }
  }

  // --- drawing ---------------------------------------------------------------------------------------------
  function mainTrace() {
    const shown = state.items.filter((item) => !state.hidden.has(tagOf(item)));
    return {
      type: "scattergl", mode: "markers", name: "songs", showlegend: false,
      x: shown.map((i) => i.embedding_2d[0]), y: shown.map((i) => i.embedding_2d[1]),
      customdata: shown.map((i) => i.item_id),
      text: shown.map((i) => `${i.title}<br>${i.artist}<br>${tagOf(i)}`),
      hovertemplate: "%{text}<extra></extra>",
      marker: { size: state.items.length > 20000 ? 3 : 6, opacity: 0.8,
        color: shown.map((i) => state.colours.get(tagOf(i))) },
      // the selection is drawn as its own ring trace; a lasso must not leave the rest of the map faded
      selectedpoints: null, unselected: { marker: { opacity: 0.8 } },
    };
  }

  function selectionTrace() {
    const x = [], y = [], ids = [];
    state.selection.forEach((id) => {
      const item = state.byId.get(id);
      const point = item ? item.embedding_2d : (known.get(id) || {}).point;
      if (point) { x.push(point[0]); y.push(point[1]); ids.push(id); }
    });
    return { type: "scatter", mode: "markers", x, y, customdata: ids, name: "selected", hoverinfo: "skip",
      showlegend: false, marker: { size: 12, symbol: "circle-open", color: "#111", line: { width: 2 } } };
  }

  function overlayTraces() {
    const traces = [selectionTrace()];
    state.paths.forEach((path, n) => {
      const x = path.points.map((p) => p[0]);
      const y = path.points.map((p) => p[1]);
      const colour = PALETTE[(n * 3 + 3) % PALETTE.length];
      traces.push({ type: "scatter", mode: "lines", x, y, name: `path ${n + 1} line`, hoverinfo: "skip",
        visible: path.lineOn, showlegend: false, line: { color: "#111", width: 2 } });
      traces.push({ type: "scatter", mode: "markers", x, y, name: `path ${n + 1} songs`, visible: path.pointsOn,
        customdata: path.ids, text: path.labels, hovertemplate: "%{text}<extra></extra>", showlegend: false,
        marker: { size: 9, color: colour, line: { color: "#111", width: 1 } } });
    });
    if (state.highlight && state.highlightOn) {
      const h = state.highlight;
      traces.push({ type: "scatter", mode: "markers", x: [h.point[0]], y: [h.point[1]], name: "found",
        customdata: [h.item_id], text: [`${h.title}<br>${h.artist}`], hovertemplate: "%{text}<extra></extra>",
        showlegend: false, marker: { size: 22, symbol: "star", color: "#ffd43b", line: { color: "#111", width: 2 } } });
    }
    return traces;
  }

  function render() {
    const layout = {
      margin: { t: 10, r: 10, b: 30, l: 40 }, hovermode: "closest", dragmode: "lasso", uirevision: "map",
      xaxis: { zeroline: false, showticklabels: false }, yaxis: { zeroline: false, showticklabels: false },
      showlegend: false,
    };
    const config = { displaylogo: false, responsive: true, scrollZoom: true };
    Plotly.react(plot, [mainTrace(), ...overlayTraces()], layout, config);
    if (!state.rendered) {
      state.rendered = true;
      plot.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.customdata) addToSelection([point.customdata]);
      });
      plot.on("plotly_selected", (event) => {
        if (event && event.points) addToSelection(event.points.map((p) => p.customdata).filter(Boolean));
      });
    }
    plot.dataset.points = String(state.items.length - state.items.filter((i) => state.hidden.has(tagOf(i))).length);
  }

  // --- legend ----------------------------------------------------------------------------------------------
  function renderLegend() {
    $("map-legend").replaceChildren(...state.tags.map(([tag, count]) => {
      const li = element("li");
      const button = element("button", { type: "button", "data-tag": tag,
        "aria-pressed": String(!state.hidden.has(tag)) });
      const swatch = element("span", { class: "swatch" });
      swatch.style.background = state.colours.get(tag);
      button.append(swatch, element("span", {}, tag), element("span", { class: "count" }, String(count)));
      button.addEventListener("click", () => {
        if (state.hidden.has(tag)) state.hidden.delete(tag); else state.hidden.add(tag);
        button.setAttribute("aria-pressed", String(!state.hidden.has(tag)));
        render();
      });
      li.append(button);
      return li;
    }));
  }
  $("legend-hide-all").addEventListener("click", () => {
    state.tags.forEach(([tag]) => state.hidden.add(tag));
    renderLegend();
    render();
  });
  $("legend-show-all").addEventListener("click", () => {
    state.hidden.clear();
    renderLegend();
    render();
  });

  // --- selection -------------------------------------------------------------------------------------------
  const known = new Map();  // item id -> {title, artist}: songs selected from outside the loaded sample too

  function addToSelection(ids, details = {}) {
    const have = new Set(state.selection);
    let refused = 0;
    ids.forEach((id) => {
      if (have.has(id)) return;
      if (state.selection.length >= settings.max_selection) { refused += 1; return; }
      state.selection.push(id);
      have.add(id);
      if (details[id]) known.set(id, details[id]);
    });
    renderSelection();
    if (refused) {
      say(selectionMessage, `The selection holds at most ${settings.max_selection} songs: ${refused} not added.`,
        true);
    }
  }

  function describeSong(id) {
    const item = state.byId.get(id) || known.get(id);
    return item ? `${item.title} — ${item.artist}` : id;
  }

  function renderSelection() {
    const list = $("selection-list");
    list.replaceChildren(...state.selection.map((id) => {
      const li = element("li", { "data-item-id": id });
      const name = element("span", {}, describeSong(id));
      const remove = element("button", { type: "button", class: "remove", "aria-label": `Remove ${describeSong(id)}` },
        "Remove");
      remove.addEventListener("click", () => {
        state.selection = state.selection.filter((other) => other !== id);
        renderSelection();
      });
      li.append(playButton(id, describeSong(id)), name, remove);
      return li;
    }));
    const n = state.selection.length;
    $("selection-count").textContent = `(${n})`;
    $("map-song-path").disabled = n < settings.path_min || n > settings.path_max;
    $("map-song-path").title = n > settings.path_max ? `Song path takes at most ${settings.path_max} songs` : "";
    document.querySelector(".playlist-box").hidden = n === 0;
    say(selectionMessage, "");
    if (state.rendered) render();
  }
  $("selection-clear").addEventListener("click", () => { state.selection = []; renderSelection(); });

  const box = document.querySelector(".playlist-box");
  playlistBox(box, () => state.selection, { source: "map" });

  // --- search and highlight --------------------------------------------------------------------------------
  const searchInput = $("map-search");
  const picked = picker(searchInput);

  async function pointsOf(ids) {
    const out = new Map();
    const missing = [];
    ids.forEach((id) => {
      const item = state.byId.get(id);
      if (item) out.set(id, item.embedding_2d); else missing.push(id);
    });
    if (missing.length) {
      const body = await api("/api/map/points", { method: "POST", body: { item_ids: missing } });
      Object.entries(body.points).forEach(([id, point]) => out.set(id, point));
    }
    return out;
  }

  function centreOn(point) {
    const layout = plot._fullLayout || {};
    const span = (axis) => (axis && axis.range ? Math.abs(axis.range[1] - axis.range[0]) : 4);
    const half = (axis) => Math.min(span(axis), 3) / 2;
    Plotly.relayout(plot, {
      "xaxis.range": [point[0] - half(layout.xaxis), point[0] + half(layout.xaxis)],
      "yaxis.range": [point[1] - half(layout.yaxis), point[1] + half(layout.yaxis)],
    });
  }

  $("map-search-go").addEventListener("click", async () => {
    let id = picked();
    let song = null;
    try {
      if (!id) {
        const text = searchInput.value.trim();
        if (text.length < 2) { say(message, "Type at least two letters of a title or an artist.", true); return; }
        const found = await api(`/api/search_tracks?q=${encodeURIComponent(text)}&limit=1`);
        if (!found.length) { say(message, `No song matches "${text}".`, true); return; }
        song = found[0];
        id = song.item_id;
      }
      const points = await pointsOf([id]);
      const point = points.get(id);
      if (!point) { say(message, "That song is not on the map yet (it has not been analyzed).", true); return; }
      const item = state.byId.get(id);
      const title = item ? item.title : (song ? song.title : searchInput.dataset.title || id);
      const artist = item ? item.artist : (song ? song.author : "");
      state.highlight = { item_id: id, point, title, artist };
      state.highlightOn = true;
      const toggle = $("map-highlight-toggle");
      toggle.disabled = false;
      toggle.setAttribute("aria-pressed", "true");
      toggle.textContent = "Hide highlight";
      render();
      centreOn(point);
      addToSelection([id], { [id]: { title, artist, point } });
      say(message, `Found "${title}" by ${artist || "an unknown artist"}: marked with a star.`);
    } catch (err) { say(message, `Search failed: ${err.message}`, true); }
  });

  $("map-highlight-toggle").addEventListener("click", (event) => {
    state.highlightOn = !state.highlightOn;
    event.currentTarget.setAttribute("aria-pressed", String(state.highlightOn));
    event.currentTarget.textContent = state.highlightOn ? "Hide highlight" : "Show highlight";
    render();
  });

  // --- song paths ------------------------------------------------------------------------------------------
  function renderPathList() {
    $("path-list").replaceChildren(...state.paths.map((path, n) => {
      const li = document.createElement("li");
      li.dataset.path = String(n);
      const label = document.createElement("span");
      label.textContent = `Path ${n + 1}: ${path.labels[0].split("<br>")[0]} → ${path.labels[path.labels.length - 1].split("<br>")[0]} (${path.ids.length} songs)`;
      li.append(label);
      [["lineOn", "line"], ["pointsOn", "points"]].forEach(([key, what]) => {
        const check = document.createElement("label");
        check.className = "check";
        const input = document.createElement("input");
        input.type = "checkbox";
        input.checked = path[key];
        input.dataset.toggle = what;
        input.addEventListener("change", () => { path[key] = input.checked; render(); });
        check.append(input, ` Show ${what}`);
        li.append(check);
      });
      return li;
    }));
  }

  $("map-song-path").addEventListener("click", async () => {
    const chosen = [...state.selection];
    const button = $("map-song-path");
    button.disabled = true;
    say(selectionMessage, `Finding ${chosen.length - 1} paths…`);
    const added = [];
    let failed = 0;
    for (let i = 0; i + 1 < chosen.length; i += 1) {
      try {
        const params = new URLSearchParams({ start_song_id: chosen[i], end_song_id: chosen[i + 1] });
        const body = await api(`/api/find_path?${params}`);
        const ids = body.path.map((t) => t.item_id);
        const points = await pointsOf(ids);
        const onMap = body.path.filter((t) => points.has(t.item_id));
        state.paths.push({ ids: onMap.map((t) => t.item_id), points: onMap.map((t) => points.get(t.item_id)),
          labels: onMap.map((t) => `${t.title}<br>${t.author}`), lineOn: true, pointsOn: true });
        body.path.forEach((t) => {
          known.set(t.item_id, { title: t.title, artist: t.author, point: points.get(t.item_id) });
          added.push(t.item_id);
        });
      } catch (err) {
        failed += 1;
        say(selectionMessage, `A path could not be found: ${err.message}`, true);
      }
    }
    render();
    renderPathList();
    addToSelection(added);
    if (!failed) say(selectionMessage, `${state.paths.length} paths drawn; their songs are in the selection.`);
  });

  // --- refresh and rebuild ---------------------------------------------------------------------------------
  function clearOverlays() {
    state.selection = [];
    state.highlight = null;
    state.paths = [];
    $("map-highlight-toggle").disabled = true;
    renderSelection();
    renderPathList();
  }
  $("map-refresh").addEventListener("click", () => { clearOverlays(); load(state.percent); });
  document.querySelectorAll(".percent").forEach((button) => {
    button.addEventListener("click", () => load(Number(button.dataset.percent)));
  });

  $("map-rebuild").addEventListener("click", async () => {
    const button = $("map-rebuild");
    button.disabled = true;
    try {
      const before = (await api("/api/map/status")).served;
      const started = await api("/api/map/rebuild", { method: "POST" });
      const task = await followTask(started.task_id, (t) => say(message,
        `Rebuilding the map: ${t.progress} % — ${t.status_message || t.status}`), { every: 1500 });
      if (task.status !== "SUCCESS") throw new Error(task.error || task.status);
      // the web process rebuilds its cache when the job announces the new map: wait until it serves it
      for (let i = 0; i < 40; i += 1) {
        const served = (await api("/api/map/status")).served;
        if (served && (!before || served.built_at !== before.built_at)) break;
        await sleep(500);
      }
      await load(state.percent);
    } catch (err) {
      say(message, `The map was not rebuilt: ${err.message}`, true);
    } finally { button.disabled = false; }
  });

  renderSelection();
  load(window.MAP_PREFETCH ? window.MAP_PREFETCH.percent : 25);
})();
