// Loaded once by base.html, before every page script: the colour theme and the navigation's menus, JSON calls with
// the CSRF token (api), following a task until it finishes (followTask), the table-cell helpers, the song picker
// (autocomplete), the play controls of a song (the player is player.js), and the playlist box (create on the media
// server, download as .m3u8).
window.AudioMuse = (() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  // --- colour theme and navigation (every page) -----------------------------------------------------------
  // The theme follows the system unless the reader chose one with the toggle (kept in this browser). Set here, in
  // the head, before anything is drawn.
  const THEME_KEY = "audiomuse-theme";
  const storedTheme = () => { try { return localStorage.getItem(THEME_KEY); } catch (err) { return null; } };
  if (storedTheme() === "dark" || storedTheme() === "light") document.documentElement.dataset.theme = storedTheme();
  const systemDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const isDark = () => (document.documentElement.dataset.theme || (systemDark && systemDark.matches ? "dark" : "light"))
    === "dark";

  function wireTopbar() {
    const toggle = document.querySelector(".theme-toggle");
    if (toggle) {
      const show = () => toggle.setAttribute("aria-pressed", String(isDark()));
      show();
      toggle.addEventListener("click", () => {
        const next = isDark() ? "light" : "dark";
        document.documentElement.dataset.theme = next;
        try { localStorage.setItem(THEME_KEY, next); } catch (err) { /* private mode: this page only */ }
        show();
        document.dispatchEvent(new CustomEvent("audiomuse:theme", { detail: next }));
      });
      if (systemDark && systemDark.addEventListener) systemDark.addEventListener("change", show);
    }
    // Menus: one group open at a time; Escape or a click elsewhere closes it. On a phone the whole navigation
    // folds behind the Menu button.
    const groups = [...document.querySelectorAll(".nav-group > details")];
    groups.forEach((details) => details.addEventListener("toggle", () => {
      if (details.open && !phone()) groups.forEach((other) => { if (other !== details) other.open = false; });
    }));
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      const open = groups.find((details) => details.open);
      if (open && !phone()) {
        open.open = false;
        open.querySelector("summary").focus();
      } else if (menu && menu.getAttribute("aria-expanded") === "true") {
        menu.setAttribute("aria-expanded", "false");
        menu.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (phone()) return;
      groups.forEach((details) => { if (details.open && !details.contains(event.target)) details.open = false; });
    });
    const menu = document.querySelector(".menu-toggle");
    const phone = () => Boolean(menu) && getComputedStyle(menu).display !== "none";
    if (menu) {
      menu.addEventListener("click", () => {
        const opening = menu.getAttribute("aria-expanded") !== "true";
        menu.setAttribute("aria-expanded", String(opening));
        // the group of the page one is on is unfolded, so its neighbours are one tap away
        if (opening) {
          groups.forEach((details) => { details.open = details.closest(".nav-group").classList.contains("current"); });
        }
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireTopbar);
  else wireTopbar();
  let clockOffsetMs = 0;  // the server's clock minus the browser's, from the Date of the last answer

  // An answer other than 2xx: the message is the server's `error`; the status and the parsed body (null when it
  // was not JSON) stay on the error, so a page can mark the field it names or follow the task a 409 names.
  class ApiError extends Error {
    constructor(response, body) {
      super((body && body.error) || `${response.status} ${response.statusText}`);
      this.name = "ApiError";
      this.status = response.status;
      this.statusText = response.statusText;
      this.body = body;
    }

    get parameter() { return this.body ? this.body.parameter : undefined; }
  }

  // One call to the server: `body` is sent as JSON (a Blob or File as it is); the answer is parsed as JSON (`as: "blob"` for a file).
  async function api(path, { method = "GET", body, headers = {}, as = "json" } = {}) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf, ...headers } };
    if (body instanceof Blob) {  // a file the reader chose, sent as it is
      options.headers["Content-Type"] = body.type || "application/octet-stream";
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const served = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(served)) clockOffsetMs = served - Date.now();
    if (!response.ok) throw new ApiError(response, await response.json().catch(() => null));
    if (as === "blob") return response.blob();
    return response.json().catch(() => ({}));
  }

  // Milliseconds since the epoch by the server's clock (elapsed times of tasks the server started).
  const serverNow = () => Date.now() + clockOffsetMs;

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
  const FINISHED = new Set(["SUCCESS", "FAILURE", "REVOKED"]);
  const finished = (task) => !task || Boolean(task.finished_at) || FINISHED.has(task.status);

  // Follows one task until it finishes: asks `url` (the task's /api/status/<id> unless a page has its own view of
  // its task, like the clustering's last run; `read` picks the task out of that answer) every `every` ms, gives each
  // answer to onUpdate and resolves with the finished task. A failed poll goes to onError and is tried again after
  // `retryEvery` ms (onError rethrowing ends the follow with that error; without onError the first failure does).
  // While `wanted()` is false the follow stops and resolves with null: a page that starts another follow drops
  // the older one.
  async function followTask(taskId, onUpdate, { every = 1000, retryEvery = every * 3,
    url = `/api/status/${encodeURIComponent(taskId)}`, read = (answer) => answer, onError, wanted = () => true } = {}) {
    while (wanted()) {
      let task;
      try {
        task = read(await api(url));
      } catch (err) {
        if (!onError) throw err;
        onError(err);
        await sleep(retryEvery);
        continue;
      }
      if (!wanted()) return null;
      onUpdate(task);
      if (finished(task)) return task;
      await sleep(every);
    }
    return null;
  }

  // A status line: the text, and the "error" class when it is bad news.
  function say(node, text, bad) {
    node.textContent = text;
    node.classList.toggle("error", Boolean(bad));
  }

  // --- building tables and lists ------------------------------------------------------------------------------
  // An element with attributes and, when given, a text.
  function element(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // A <td>: a node is put in as it is, anything else as text (null as nothing).
  function cell(content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
    if (className) td.className = className;
    return td;
  }
  // A <tr> of cells; strings (and numbers) become cells, <td>s stay as they are.
  function row(cells, dataset = {}) {
    const tr = document.createElement("tr");
    Object.assign(tr.dataset, dataset);
    tr.append(...cells.map((c) => (c instanceof HTMLTableCellElement ? c : cell(c))));
    return tr;
  }
  // Fill a <tbody> with one row per item; `cellsOf(item, index)` gives the row's cells.
  function fillRows(tbody, items, cellsOf) {
    tbody.replaceChildren(...items.map((item, i) => row(cellsOf(item, i))));
  }
  // A result row: its number and a ▶ preview button, then the cells; tr.dataset.itemId names the track.
  function trackRow(number, itemId, label, cells) {
    const first = cell(String(number));
    first.className = "track-cell";
    first.append(" ", coverImage(itemId, 36), playButton(itemId, label));
    return row([first, ...cells], { itemId });
  }

  const duration = (seconds) => {
    if (seconds == null) return "";
    const whole = Math.round(seconds);
    return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
  };
  // What tells two tracks of one title apart: album, length, file format and year.
  const trackDetail = (t) => [t.album, duration(t.duration_seconds), t.format, t.year].filter(Boolean).join(" · ");
  let pickers = 0;

  // A combobox (WAI-ARIA pattern): typing searches /api/search_tracks, ArrowDown/ArrowUp move through the
  // suggestions, Enter picks, Escape closes; the chosen track's id is kept on the input.
  function picker(input, { onPick, onEnter } = {}) {
    const number = ++pickers;
    const wrap = document.createElement("span");
    wrap.className = "combo";
    input.replaceWith(wrap);
    wrap.append(input);
    const list = document.createElement("ul");
    list.className = "picker-list";
    list.id = `picker-list-${number}`;
    list.setAttribute("role", "listbox");
    list.hidden = true;
    wrap.append(list);
    Object.entries({ role: "combobox", autocomplete: "off", "aria-autocomplete": "list", "aria-expanded": "false",
      "aria-controls": list.id }).forEach(([name, value]) => input.setAttribute(name, value));
    let found = [];
    let lastFound = [];  // the latest suggestions, kept after the list closes (an exact title typed)
    let active = -1;
    let timer;
    let asked = 0;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      found = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    function highlight(index) {
      active = index;
      [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
      if (index >= 0) {
        const li = list.children[index];
        input.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }
    // the one suggestion whose title (or "title — artist") is exactly what was typed, case aside; -1 when none
    // or several (two songs called "Intro": the person picks)
    function exact() {
      const typed = input.value.trim().toLowerCase();
      const same = (t) => t.title.toLowerCase() === typed || `${t.title} — ${t.author}`.toLowerCase() === typed;
      const matches = lastFound.filter(same);
      return matches.length === 1 ? lastFound.indexOf(matches[0]) : -1;
    }
    function choose(index) {
      const t = found[index] || lastFound[index];
      if (!t) return;
      input.value = `${t.title} — ${t.author}`;
      input.dataset.itemId = t.item_id;
      input.dataset.title = t.title;
      close();
      if (onPick) onPick(t);
    }
    function show(tracks) {
      found = tracks;
      lastFound = tracks;
      list.replaceChildren(...tracks.map((t, i) => {
        const li = document.createElement("li");
        li.id = `${list.id}-option-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        const name = document.createElement("span");
        name.textContent = `${t.title} — ${t.author}`;
        const detail = document.createElement("small");
        detail.className = "muted";
        detail.textContent = trackDetail(t);
        li.append(name, detail);
        li.addEventListener("mousedown", (event) => { event.preventDefault(); choose(i); });
        return li;
      }));
      list.hidden = tracks.length === 0;
      input.setAttribute("aria-expanded", String(tracks.length > 0));
      active = -1;
    }

    input.addEventListener("input", () => {
      input.dataset.itemId = "";
      clearTimeout(timer);
      const text = input.value.trim();
      if (text.length < 2) { close(); return; }
      timer = setTimeout(async () => {
        const mine = ++asked;
        try {
          const tracks = await api(`/api/search_tracks?q=${encodeURIComponent(text)}&limit=10`);
          if (mine === asked) show(tracks);  // an older, slower answer must not replace a newer one
        } catch (err) {
          close();
        }
      }, 200);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!found.length) return;
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        // from no option, ArrowUp goes to the last one (not the one before it)
        highlight(active < 0 && step < 0 ? found.length - 1 : (active + step + found.length) % found.length);
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();  // picks; it does not submit the form
        choose(active);
        if (onEnter) onEnter();
      } else if (event.key === "Enter" && !input.dataset.itemId && exact() >= 0) {
        choose(exact());  // a title typed in full is as good as picked; the form goes on unless the page acts
        if (onEnter) { event.preventDefault(); onEnter(); }
      } else if (event.key === "Enter" && onEnter) {
        event.preventDefault();
        onEnter();
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 150));
    return () => {
      if (!input.dataset.itemId && exact() >= 0) choose(exact());
      return input.dataset.itemId || "";
    };
  }

  // A Plotly layout in the page's colours: transparent behind, the text in the theme's colour (dark mode too).
  function themed(layout) {
    const style = getComputedStyle(document.documentElement);
    const fg = style.getPropertyValue("--fg").trim() || "#1d2430";
    const grid = style.getPropertyValue("--subtle").trim() || "#e4e7ec";
    const axis = (a) => ({ gridcolor: grid, zerolinecolor: grid, ...(a || {}) });
    return { ...layout, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg, ...(layout.font || {}) }, xaxis: axis(layout.xaxis), yaxis: axis(layout.yaxis) };
  }

  // A small line chart (SVG, no library): `points` [[x, y], …] in order, drawn into `box` with the lowest and
  // highest y and the first and last x written at the axes; `label` says what it shows (for screen readers too).
  function lineChart(box, points, { label, x: xName = "", format = (v) => String(v) } = {}) {
    const ns = "http://www.w3.org/2000/svg";
    const [width, height, left, bottom] = [320, 120, 44, 20];
    const shown = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "line-chart");
    svg.setAttribute("role", "img");
    const ys = shown.map((p) => p[1]);
    const xs = shown.map((p) => p[0]);
    svg.setAttribute("aria-label", shown.length ? `${label}: from ${format(ys[0])} to ${format(ys[ys.length - 1])}, ` +
      `lowest ${format(Math.min(...ys))}, highest ${format(Math.max(...ys))}` : `${label}: no values`);
    const text = (x, y, content, anchor = "start") => {
      const t = document.createElementNS(ns, "text");
      Object.entries({ x, y, "text-anchor": anchor, class: "chart-text" }).forEach(([k, v]) => t.setAttribute(k, v));
      t.textContent = content;
      svg.append(t);
    };
    if (shown.length) {
      const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      const px = (x) => left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (width - left - 8);
      const py = (y) => 6 + (y1 > y0 ? 1 - (y - y0) / (y1 - y0) : 0.5) * (height - bottom - 12);
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", shown.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" "));
      line.setAttribute("class", "chart-line");
      svg.append(line);
      shown.forEach(([x, y]) => {
        const dot = document.createElementNS(ns, "circle");
        Object.entries({ cx: px(x).toFixed(1), cy: py(y).toFixed(1), r: 2.5, class: "chart-dot" })
          .forEach(([k, v]) => dot.setAttribute(k, v));
        svg.append(dot);
      });
      text(left - 4, py(y1) + 4, format(y1), "end");
      text(left - 4, py(y0) + 4, format(y0), "end");
      text(left, height - 4, `${xName}${x0}`);
      text(width - 8, height - 4, `${xName}${x1}`, "end");
    }
    const figure = document.createElement("figure");
    figure.className = "chart-figure";
    const caption = document.createElement("figcaption");
    caption.textContent = label;
    figure.append(caption, svg);
    box.replaceChildren(figure);
  }

  // A song's cover art (the server's picture, or a neutral placeholder), loaded when it scrolls into view.
  function coverImage(itemId, pixels = 36) {
    return element("img", { class: "cover", alt: "", width: String(pixels), height: String(pixels), loading: "lazy",
      decoding: "async", src: `/api/tracks/${encodeURIComponent(itemId)}/cover?size=${pixels > 64 ? 128 : 64}` });
  }

  // A song's play controls for any list: ▶ plays the list it is in from this song (a second click pauses), +
  // adds it to the queue. The player (static/js/player.js, on every page) does the playing.
  function playButton(itemId, title) {
    const play = element("button", { type: "button", class: "play", "aria-pressed": "false",
      "aria-label": `Play ${title}`, "data-item-id": itemId, "data-label": title }, "▶");
    play.addEventListener("click", () => window.AudioMusePlayer.clicked(play));
    const add = element("button", { type: "button", class: "queue-add", "aria-label": `Add ${title} to the queue`,
      title: "Add to the queue" }, "+");
    add.addEventListener("click", () => window.AudioMusePlayer.addToQueue([{ id: itemId, label: title }]));
    const both = document.createDocumentFragment();
    both.append(play, add);
    return both;
  }

  const fmt = (value, digits = 3) => (value == null ? "–" : Number(value).toFixed(digits));

  // Fill a <tbody> with tracks; `extra` adds columns.
  function fillTracks(tbody, tracks, extra = () => []) {
    tbody.replaceChildren(...tracks.map((t, i) => trackRow(i + 1, t.item_id, `${t.title} — ${t.author}`,
      [titleWithCopies(t), t.author, t.album, fmt(t.tempo_bpm, 1), t.camelot || "–", ...extra(t)])));
  }
  // A song the library holds as several files: which one is listed and why ("FLAC · 3 files").
  function titleWithCopies(t) {
    if (!(t.copies > 1)) return t.title;
    const box = element("span", {}, t.title);
    box.append(" ", element("span", { class: "badge", title: t.copy_note || "" },
      `${t.format || "?"} · ${t.copies} files`));
    return box;
  }

  // The playlist box under results: name, "Create playlist", "Download .m3u8". The returned function suggests a
  // name for the current results (e.g. "Similar to <seed>"); a name the user typed is kept.
  function playlistBox(box, getIds, { source, credentials } = {}) {
    const name = box.querySelector("input[name=playlist_name]");
    let typed = false;
    name.addEventListener("input", () => { typed = name.value.trim() !== ""; });
    const status = box.querySelector(".playlist-status");
    const tell = (text, bad) => say(status, text, bad);
    box.querySelector(".create-playlist").addEventListener("click", async () => {
      try {
        const body = { playlist_name: name.value, track_ids: getIds(), source, ...(credentials ? credentials() : {}) };
        const made = await api("/api/create_playlist", { method: "POST", body });
        tell(`Playlist "${made.name}" created with ${made.track_count} songs.`);
      } catch (err) { tell(`Not created: ${err.message}`, true); }
    });
    box.querySelector(".download-m3u").addEventListener("click", async () => {
      try {
        const file = await api("/api/playlist.m3u8", { method: "POST", as: "blob",
          body: { playlist_name: name.value, track_ids: getIds() } });
        const url = URL.createObjectURL(file);
        const link = document.createElement("a");
        link.href = url;
        link.download = `${name.value || "playlist"}.m3u8`;
        document.body.append(link);
        link.click();
        link.remove();
        URL.revokeObjectURL(url);
      } catch (err) { tell(`Not downloaded: ${(err.body && err.body.error) || err.statusText || err.message}`, true); }
    });
    return (suggested) => { if (!typed) name.value = suggested.slice(0, 200); };
  }

  return { api, ApiError, serverNow, followTask, sleep, say, element, cell, row, fillRows, trackRow, picker,
    fillTracks, playlistBox, fmt, trackDetail, playButton, coverImage, lineChart, themed };
})();
