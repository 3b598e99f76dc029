// The player at the bottom of every page: a queue of songs played whole from /api/tracks/<id>/audio, with previous /
// play-pause / next, a seek bar, volume and the queue itself (jump to a song, remove it, clear it). The queue, the
// song and the position are kept in this browser (localStorage), so they survive a change of page: the next page
// shows the same queue at the same place and goes on playing when the browser allows it.
//
// Any list with ▶ buttons (AudioMuse.playButton) is playable: ▶ plays the list from that song, + adds one song, and
// each list gets "Play all" and "Add all to queue" above it. Keys, when no field has the focus: Space plays or
// pauses (not while a button has the focus: Space presses it), ←/→ seek 10 s, Shift+←/→ go to the previous/next
// song. One tab plays at a time: another that starts playing pauses this one, which then follows its queue.
window.AudioMusePlayer = (() => {
  "use strict";
  const { api, element, say } = window.AudioMuse;
  const KEY = "audiomuse-player";
  const SEEK_STEP = 10;
  const pageTitle = document.title;

  const state = { queue: [], index: -1, position: 0, volume: 1, open: false };
  try { Object.assign(state, JSON.parse(localStorage.getItem(KEY) || "{}")); } catch (err) { /* a fresh queue */ }
  if (!Array.isArray(state.queue)) state.queue = [];
  let wasPlaying = Boolean(state.playing);
  let lastSaved = 0;

  function save() {
    const audio = ui.audio;
    // the position of the current song once it is the one loaded (a song still loading keeps the position it is
    // to start from; the one before it, still playing meanwhile, does not write its own)
    const current = state.queue[state.index];
    if (audio && audio.readyState >= 1 && current && audio.getAttribute("src") === audioUrl(current.id)) {
      state.position = audio.currentTime;
    }
    state.playing = Boolean(audio && !audio.paused);
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (err) { /* private mode: this page only */ }
  }

  // --- the bar ------------------------------------------------------------------------------------------
  const ui = {};
  // icons drawn here (a system font may lack the media symbols)
  const ICONS = { prev: "M6 5h2v14H6zM9.5 12 18 5v14z", next: "M16 5h2v14h-2zM14.5 12 6 19V5z",
    play: "M7 4.5v15L19.5 12z", pause: "M6.5 5h4v14h-4zM13.5 5h4v14h-4z",
    queue: "M4 6h16v2H4zm0 5h16v2H4zm0 5h10v2H4z" };
  function icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "icon");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }
  function iconButton(className, label, name) {
    const b = element("button", { type: "button", class: className, "aria-label": label, title: label });
    b.append(icon(name));
    return b;
  }
  function button(className, label, text) {
    return element("button", { type: "button", class: className, "aria-label": label, title: label }, text);
  }
  function build() {
    const bar = element("section", { class: "player", "aria-label": "Player" });
    ui.title = element("span", { class: "player-title", "aria-live": "polite" });
    ui.cover = element("img", { class: "player-cover cover", alt: "", width: "48", height: "48" });
    ui.prev = iconButton("player-prev", "Previous song (Shift+←)", "prev");
    ui.play = iconButton("player-play", "Play (Space)", "play");
    ui.next = iconButton("player-next", "Next song (Shift+→)", "next");
    ui.seek = element("input", { type: "range", class: "player-seek", min: "0", max: "0", step: "1", value: "0",
      "aria-label": "Position in the song (← →)" });
    ui.time = element("span", { class: "player-time muted" }, "0:00");
    ui.volume = element("input", { type: "range", class: "player-volume", min: "0", max: "1", step: "0.05",
      "aria-label": "Volume" });
    ui.queueButton = iconButton("player-queue-toggle", "Show the queue", "queue");
    ui.queueButton.setAttribute("aria-expanded", "false");
    ui.queueButton.setAttribute("aria-controls", "player-queue");
    ui.status = element("span", { class: "player-status", role: "status" });
    ui.audio = element("audio", { preload: "metadata" });
    ui.panel = element("div", { class: "player-queue", id: "player-queue", hidden: "" });
    ui.list = element("ol", { class: "player-queue-list" });
    ui.clear = button("player-clear", "Clear the queue", "Clear the queue");
    ui.panel.append(element("h2", {}, "Queue"), ui.list, ui.clear);
    const controls = element("div", { class: "player-controls" });
    controls.append(ui.prev, ui.play, ui.next);
    const where = element("div", { class: "player-where" });
    where.append(ui.title, ui.seek, ui.time, ui.status);
    bar.append(ui.cover, controls, where, ui.volume, ui.queueButton, ui.audio, ui.panel);
    document.body.append(bar);
    document.body.classList.add("has-player");
    ui.bar = bar;

    ui.play.addEventListener("click", toggle);
    ui.prev.addEventListener("click", () => go(state.index - 1));
    ui.next.addEventListener("click", () => go(state.index + 1));
    ui.seek.addEventListener("input", () => { ui.audio.currentTime = Number(ui.seek.value); });
    ui.volume.value = String(state.volume);
    ui.audio.volume = Number(state.volume);
    ui.volume.addEventListener("input", () => {
      state.volume = Number(ui.volume.value);
      ui.audio.volume = state.volume;
      save();
    });
    ui.queueButton.addEventListener("click", () => showQueue(ui.panel.hidden));
    ui.clear.addEventListener("click", () => {
      unload();
      Object.assign(state, { queue: [], index: -1, position: 0 });
      save();
      render();
    });
    ui.audio.addEventListener("play", render);
    ui.audio.addEventListener("pause", () => { save(); render(); });
    ui.audio.addEventListener("loadedmetadata", () => {
      ui.seek.max = String(Math.floor(ui.audio.duration || 0));
      if (state.position && state.position < ui.audio.duration) ui.audio.currentTime = state.position;
    });
    ui.audio.addEventListener("timeupdate", () => {
      ui.seek.value = String(Math.floor(ui.audio.currentTime));
      ui.time.textContent = `${clock(ui.audio.currentTime)} / ${clock(ui.audio.duration)}`;
      if (Date.now() - lastSaved > 2000) { lastSaved = Date.now(); save(); }
    });
    ui.audio.addEventListener("ended", () => {
      if (state.index + 1 < state.queue.length) go(state.index + 1);
      else { state.position = 0; save(); render(); }
    });
    ui.audio.addEventListener("error", () => {
      if (ui.audio.getAttribute("src")) say(ui.status, "This song could not be played.", true);
    });
    window.addEventListener("pagehide", save);
  }

  const audioUrl = (id) => `/api/tracks/${encodeURIComponent(id)}/audio`;
  function unload() {  // nothing of the song before plays on under the next one's name
    ui.audio.pause();
    ui.audio.removeAttribute("src");
    ui.audio.load();
  }

  const clock = (seconds) => {
    if (!Number.isFinite(seconds)) return "0:00";
    const s = Math.floor(seconds);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };

  function showQueue(open) {
    state.open = open;
    ui.panel.hidden = !open;
    ui.queueButton.setAttribute("aria-expanded", String(open));
    ui.queueButton.setAttribute("aria-label", open ? "Hide the queue" : "Show the queue");
    save();
  }

  function render() {
    if (!ui.bar) build();
    const current = state.queue[state.index];
    ui.bar.hidden = state.queue.length === 0;
    document.body.classList.toggle("has-player", state.queue.length > 0);
    ui.title.textContent = current ? current.label : "";
    const cover = current ? `/api/tracks/${encodeURIComponent(current.id)}/cover?size=128` : "";
    if (ui.cover.getAttribute("src") !== cover) {
      if (cover) ui.cover.setAttribute("src", cover); else ui.cover.removeAttribute("src");
    }
    ui.cover.hidden = !current;
    ui.bar.dataset.index = String(state.index);
    ui.bar.dataset.queueLength = String(state.queue.length);
    const playing = !ui.audio.paused;
    if (ui.play.dataset.icon !== (playing ? "pause" : "play")) {
      ui.play.dataset.icon = playing ? "pause" : "play";
      ui.play.replaceChildren(icon(ui.play.dataset.icon));
    }
    ui.play.setAttribute("aria-label", playing ? "Pause (Space)" : "Play (Space)");
    ui.prev.disabled = state.index <= 0;
    ui.next.disabled = state.index >= state.queue.length - 1;
    document.title = playing && current ? `▶ ${current.label} · ${pageTitle}` : pageTitle;
    const drawn = JSON.stringify([state.index, state.queue.map((song) => song.id)]);
    if (ui.list.dataset.drawn !== drawn) ui.list.dataset.drawn = drawn;
    else return markButtons(playing, current);
    ui.list.replaceChildren(...state.queue.map((song, i) => {
      const item = element("li", i === state.index ? { "aria-current": "true" } : {});
      const jump = button("player-jump link", `Play ${song.label}`, song.label);
      jump.addEventListener("click", () => go(i));
      const remove = button("player-remove", `Remove ${song.label} from the queue`, "✕");
      remove.addEventListener("click", () => removeAt(i));
      item.append(jump, remove);
      return item;
    }));
    return markButtons(playing, current);
  }

  function markButtons(playing, current) {
    ui.panel.hidden = !state.open || state.queue.length === 0;
    ui.queueButton.setAttribute("aria-expanded", String(!ui.panel.hidden));
    document.querySelectorAll("main button.play[data-item-id]").forEach((b) => {
      const on = playing && current && b.dataset.itemId === current.id;
      if (b.getAttribute("aria-pressed") !== String(Boolean(on))) {  // unchanged buttons untouched: no mutation
        b.setAttribute("aria-pressed", String(Boolean(on)));
        b.textContent = on ? "■" : "▶";
      }
    });
  }

  // Load song i of the queue (and play it unless `paused`); a song that cannot be played says why.
  async function go(i, { paused = false, position = 0 } = {}) {
    if (i < 0 || i >= state.queue.length) return;
    state.index = i;
    state.position = position;
    const song = state.queue[i];
    say(ui.status, "");
    if (ui.audio.getAttribute("src") !== audioUrl(song.id)) unload();
    render();
    const url = audioUrl(song.id);
    try {
      await api(url, { headers: { Range: "bytes=0-0" }, as: "blob" });  // a clear reason when it cannot be read
    } catch (err) {
      const reason = (err.body && err.body.error) || err.statusText || err.message;
      say(ui.status, `Cannot play ${song.label}: ${reason}`, true);
      unload();
      render();
      return;
    }
    if (state.index !== i) return;  // another song was chosen meanwhile
    ui.audio.src = url;
    save();
    if (!paused) {
      ui.audio.play().catch(() => say(ui.status, "Press ▶ to play (the browser waits for a click first)."));
    }
    render();
  }

  function toggle() {
    if (!state.queue.length) return;
    const current = state.queue[state.index];
    if (!current || ui.audio.getAttribute("src") !== audioUrl(current.id)) {  // nothing loaded, or another tab's
      go(state.index < 0 ? 0 : state.index, { position: state.position });
      return;
    }
    if (ui.audio.paused) ui.audio.play().catch((err) => say(ui.status, `Cannot play: ${err.message}`, true));
    else ui.audio.pause();
  }

  function removeAt(i) {
    state.queue.splice(i, 1);
    if (i < state.index) state.index -= 1;
    else if (i === state.index) {
      unload();
      state.index = Math.min(state.index, state.queue.length - 1);
      state.position = 0;
    }
    save();
    render();
  }

  // --- playing lists -------------------------------------------------------------------------------------
  const songOf = (b) => ({ id: b.dataset.itemId, label: b.dataset.label || b.dataset.itemId });
  const listOf = (node) => node.closest("tbody, ol, ul, table") || node.parentElement;
  const songsIn = (list) => [...list.querySelectorAll("button.play[data-item-id]")].map(songOf);

  function playList(songs, start = 0) {
    if (!songs.length) return;
    state.queue = songs;
    go(start);
  }
  function addToQueue(songs) {
    const wasEmpty = state.queue.length === 0;
    state.queue.push(...songs);
    say(ui.status, `${songs.length === 1 ? songs[0].label : `${songs.length} songs`} added to the queue.`);
    if (wasEmpty) go(0, { paused: true });
    else { save(); render(); }
  }

  // ▶ of a row: pause when it is the song playing, else play its list from it
  function clicked(b) {
    const current = state.queue[state.index];
    if (current && current.id === b.dataset.itemId && ui.audio.getAttribute("src")) {
      if (!ui.audio.paused) ui.audio.pause();
      else go(state.index, { position: ui.audio.currentTime });  // asked again: the file may have gone meanwhile
      return;
    }
    const list = listOf(b);
    const songs = songsIn(list);
    playList(songs, Math.max(0, songs.findIndex((s) => s.id === b.dataset.itemId)));
  }

  // "Play all" and "Add all to queue" above every list that has songs to play
  function equip(list) {
    const holder = list.tagName === "TBODY" ? list.closest("table") : list;
    if (!holder || holder.previousElementSibling?.classList.contains("queue-tools")) return;
    const tools = element("div", { class: "queue-tools buttons" });
    const all = button("queue-play-all", "Play all the songs of this list", "▶ Play all");
    const add = button("queue-add-all", "Add all the songs of this list to the queue", "+ Add all to queue");
    all.addEventListener("click", () => playList(songsIn(list)));
    add.addEventListener("click", () => addToQueue(songsIn(list)));
    tools.append(all, add);
    holder.before(tools);
  }
  function equipAll() {
    const lists = new Set([...document.querySelectorAll("main button.play[data-item-id]")].map(listOf));
    lists.forEach((list) => { if (songsIn(list).length > 1) equip(list); });
    document.querySelectorAll(".queue-tools").forEach((tools) => {
      const next = tools.nextElementSibling;
      if (!next || !next.querySelector("button.play[data-item-id]")) tools.remove();  // its list was emptied
    });
    if (ui.bar) render();
  }
  let pending = false;
  const holdsSongs = (node) => node.nodeType === 1 && (node.matches("button.play, .queue-tools")
    || node.querySelector("button.play") !== null);
  new MutationObserver((records) => {
    // only lists that gained or lost songs matter (not the map's hover card on every move of the mouse)
    if (pending || !records.some((r) => [...r.addedNodes, ...r.removedNodes].some(holdsSongs))) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; equipAll(); });
  }).observe(document.querySelector("main") || document.body, { childList: true, subtree: true });

  // --- keys ------------------------------------------------------------------------------------------------
  // fields take the keys; Space also presses a focused button or link, so it is theirs too
  const typing = (node) => node && node.closest("input, textarea, select, [contenteditable], [tabindex]:not(main)" +
    ":not(body):not(a):not(button)") !== null;
  const pressable = (node) => node && node.closest("button, a, summary") !== null;
  document.addEventListener("keydown", (event) => {
    if (!state.queue.length || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === " " && pressable(event.target)) return;
    if (event.key === " ") { event.preventDefault(); toggle(); }
    else if (event.key === "ArrowRight" && event.shiftKey) { event.preventDefault(); go(state.index + 1); }
    else if (event.key === "ArrowLeft" && event.shiftKey) { event.preventDefault(); go(state.index - 1); }
    else if ((event.key === "ArrowRight" || event.key === "ArrowLeft") && ui.audio.getAttribute("src")) {
      event.preventDefault();
      ui.audio.currentTime = Math.max(0, ui.audio.currentTime + (event.key === "ArrowRight" ? SEEK_STEP : -SEEK_STEP));
    }
  });

  // --- other tabs, and a page restored by Back ---------------------------------------------------------------
  function adopt(stored) {  // the queue another tab (or this page before Back) left, without playing it here
    Object.assign(state, { queue: Array.isArray(stored.queue) ? stored.queue : [], index: stored.index ?? -1,
      position: stored.position || 0, volume: stored.volume ?? state.volume, open: Boolean(stored.open) });
    render();
  }
  window.addEventListener("storage", (event) => {
    if (event.key !== KEY || !event.newValue) return;
    let stored;
    try { stored = JSON.parse(event.newValue); } catch (err) { return; }
    if (stored.playing && !ui.audio.paused) ui.audio.pause();  // one tab plays at a time: the newest
    if (ui.audio.paused) adopt(stored);  // a paused tab follows the queue the other one keeps
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    try { adopt(JSON.parse(localStorage.getItem(KEY) || "{}")); } catch (err) { /* keep what is shown */ }
  });

  // --- start: the queue of the previous page, at the same place ------------------------------------------
  build();
  if (state.queue.length && state.index >= 0) {
    go(state.index, { paused: !wasPlaying, position: state.position });
  }
  showQueue(Boolean(state.open));
  render();
  equipAll();

  return { clicked, playList, addToQueue, state };
})();
