// Text search: keyword results (title, artist, album, tags) as the user types, then the songs that sound like the
// words (the semantic engine), appended without duplicates; suggestions, the engine's status, a playlist box.
(() => {
  "use strict";
  const { api, say, element, cell, playlistBox, trackRow } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const input = $("query");
  const rows = $("search-rows");
  const message = $("search-message");
  const status = $("engine-status");
  const box = document.querySelector(".playlist-box");
  const limit = () => Math.max(1, Math.min(500, Number(document.querySelector("input[name=limit]").value) || 100));

  let shown = [];  // [{item_id, title, author, album, match, why}]
  let asked = 0;   // the newest query; older answers are dropped
  let keywordTimer;
  let semanticTimer;
  const suggestName = playlistBox(box, () => shown.map((r) => r.item_id), { source: "text_search" });

  function render() {
    rows.replaceChildren(...shown.map((r, i) => {
      const tr = trackRow(i + 1, r.item_id, `${r.title} — ${r.author}`,
        [r.title, r.author, r.album, r.match, cell(r.why, "why")]);
      tr.dataset.source = r.source;
      return tr;
    }));
    $("search-results").hidden = shown.length === 0;
    $("result-count").textContent = `(${shown.length})`;
    box.hidden = shown.length === 0;
  }

  function add(results, source) {
    const have = new Set(shown.map((r) => r.item_id));
    results.forEach((r) => {
      if (have.has(r.item_id)) return;
      have.add(r.item_id);
      shown.push({ ...r, source });
    });
    shown = shown.slice(0, limit());
    render();
  }

  async function keyword(query, mine) {
    try {
      const body = await api(`/api/search/keyword?q=${encodeURIComponent(query)}&limit=${limit()}`);
      if (mine !== asked) return;
      add(body.results.map((r) => ({ item_id: r.item_id, title: r.title, author: r.author, album: r.album,
        match: r.matched.startsWith("tag") ? r.matched : `${r.matched} contains "${query}"`, why: "" })), "keyword");
    } catch (err) { if (mine === asked) say(message, `Keyword search failed: ${err.message}`, true); }
  }

  let modelLoaded = false;  // from the engine status: the first search after a start loads the model
  async function semantic(query, mine) {
    // the first search after a start waits for the model to load (seconds): say so while it does
    const waiting = setTimeout(() => {
      if (mine === asked) {
        say(message, modelLoaded ? "Searching for songs that sound like it…"
          : "Loading the text model (the first search after a start takes a few seconds)…");
      }
    }, 400);
    message.setAttribute("aria-busy", "true");
    try {
      const body = await api("/api/clap/search", { method: "POST", body: { query, limit: limit() } });
      if (mine !== asked) return;
      add(body.results.map((r) => ({ item_id: r.item_id, title: r.title, author: r.author, album: r.album,
        match: `sounds like it: ${Math.round(r.similarity * 100)} %`,
        why: body.engine === "clap" ? "CLAP: the track's audio embedding is close to the words'"
          : r.matched.map((m) => `${m.concept} (top ${Math.max(1, Math.round((1 - m.percentile) * 100))} %)`)
            .join(", ") })), "semantic");
      say(message, body.message || `${shown.length} songs for "${query}".`);
      refreshStatus();
    } catch (err) {
      if (mine !== asked) return;
      say(message, `Only title, artist, album and tag matches are shown: ${err.message}`, true);
    } finally {
      clearTimeout(waiting);
      message.setAttribute("aria-busy", "false");
    }
  }

  function start(query, { now = false } = {}) {
    const mine = ++asked;
    clearTimeout(keywordTimer);
    clearTimeout(semanticTimer);
    shown = [];
    render();
    say(message, "");
    if (query.length >= 2) keywordTimer = setTimeout(() => keyword(query, mine), now ? 0 : 150);
    if (query.length >= 3) {
      semanticTimer = setTimeout(() => semantic(query, mine), now ? 0 : 500);
      suggestName(query);
    } else if (now) {
      say(message, "Type at least three letters.", true);
    }
  }

  input.addEventListener("input", () => start(input.value.trim()));
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    start(input.value.trim(), { now: true });
  });

  async function refreshStatus() {
    try {
      const s = await api("/api/clap/warmup/status");
      if (s.error) { say(status, `The text model is not available: ${s.error}`, true); return; }
      const left = s.seconds_remaining;
      modelLoaded = Boolean(s.active);
      say(status, s.active
        ? `Engine: ${s.engine} (${s.model}), ready; unloads after ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} without use.`
        : `Engine: ${s.engine} (${s.model}), not loaded (it loads with the first search).`);
    } catch (err) { say(status, `Engine status unknown: ${err.message}`, true); }
  }

  async function suggestions() {
    try {
      const body = await api("/api/clap/top_queries");
      $("suggestions").replaceChildren(...body.queries.map((q) => {
        const b = element("button", { type: "button" }, q);
        b.addEventListener("click", () => { input.value = q; start(q, { now: true }); });
        return b;
      }));
    } catch (err) { /* suggestions are extra; the engine status says what is wrong */ }
  }

  // a description handed over in the address (the home page's "describe the music"): searched at once
  const handed = new URLSearchParams(window.location.search).get("q");
  if (handed && handed.trim()) {
    input.value = handed.trim();
    start(input.value, { now: true });
  }

  (async () => {
    try { await api("/api/clap/warmup", { method: "POST" }); } catch (err) { /* shown by the status below */ }
    await refreshStatus();
    suggestions();
    setInterval(refreshStatus, 15000);
  })();
})();
