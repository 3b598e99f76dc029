// Shared by the discovery pages: JSON calls with the CSRF token, the song picker (autocomplete), result tables,
// and the playlist box (create on the media server, download as .m3u8).
window.AudioMuse = (() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function api(url, { method = "GET", body } = {}) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
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
  function picker(input, { onPick } = {}) {
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
    function choose(index) {
      const t = found[index];
      if (!t) return;
      input.value = `${t.title} — ${t.author}`;
      input.dataset.itemId = t.item_id;
      input.dataset.title = t.title;
      close();
      if (onPick) onPick(t);
    }
    function show(tracks) {
      found = tracks;
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
        highlight((active + step + found.length) % found.length);
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();  // picks; it does not submit the form
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 150));
    return () => input.dataset.itemId || "";
  }

  // One shared player for the 30-second previews of every result table: a ▶ button per row plays the track from
  // /api/tracks/<id>/audio (Range requests, so the browser can seek); a second click stops it.
  const PREVIEW_SECONDS = 30;
  let player = null;
  let playing = null;  // the button of the track playing
  function previewBar() {
    if (player) return player;
    const bar = document.createElement("div");
    bar.className = "preview-bar";
    bar.hidden = true;
    const label = document.createElement("span");
    label.className = "preview-title";
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    const status = document.createElement("span");
    status.className = "preview-status";
    status.setAttribute("role", "status");
    bar.append(label, audio, status);
    document.body.append(bar);
    audio.addEventListener("timeupdate", () => {
      if (audio.currentTime - (audio.dataset.start || 0) >= PREVIEW_SECONDS) audio.pause();
    });
    audio.addEventListener("pause", () => { if (playing) { playing.textContent = "▶"; playing.setAttribute("aria-pressed", "false"); } });
    player = { bar, label, audio, status };
    return player;
  }
  async function preview(button, itemId, title) {
    const p = previewBar();
    if (playing === button && !p.audio.paused) { p.audio.pause(); return; }
    if (playing) { playing.textContent = "▶"; playing.setAttribute("aria-pressed", "false"); }
    playing = button;
    p.bar.hidden = false;
    p.label.textContent = title;
    p.status.textContent = "";
    p.status.classList.remove("error");
    const url = `/api/tracks/${encodeURIComponent(itemId)}/audio`;
    const probe = await fetch(url, { headers: { Range: "bytes=0-0" }, credentials: "same-origin" });
    if (!probe.ok) {
      const body = await probe.json().catch(() => ({}));
      p.status.textContent = `Cannot play: ${body.error || probe.statusText}`;
      p.status.classList.add("error");
      return;
    }
    p.audio.src = url;
    p.audio.dataset.start = "0";
    button.textContent = "■";
    button.setAttribute("aria-pressed", "true");
    p.audio.play().catch((err) => { p.status.textContent = `Cannot play: ${err.message}`; p.status.classList.add("error"); });
  }
  function playButton(itemId, title) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "play";
    button.textContent = "▶";
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `Play a preview of ${title}`);
    button.addEventListener("click", () => preview(button, itemId, title));
    return button;
  }

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
  const fmt = (value, digits = 3) => (value == null ? "–" : Number(value).toFixed(digits));

  // Fill a <tbody> with tracks; `extra` adds columns.
  function fillTracks(tbody, tracks, extra = () => []) {
    tbody.replaceChildren(...tracks.map((t, i) => {
      const tr = document.createElement("tr");
      tr.dataset.itemId = t.item_id;
      const number = cell(String(i + 1));
      number.append(" ", playButton(t.item_id, `${t.title} — ${t.author}`));
      tr.append(number, cell(t.title), cell(t.author), cell(t.album),
        cell(t.tempo_bpm == null ? "–" : Number(t.tempo_bpm).toFixed(1)), cell(t.camelot || "–"),
        ...extra(t).map(cell));
      return tr;
    }));
  }

  // The playlist box under results: name, "Create playlist", "Download .m3u8". The returned function suggests a
  // name for the current results (e.g. "Similar to <seed>"); a name the user typed is kept.
  function playlistBox(box, getIds, { source, credentials } = {}) {
    const name = box.querySelector("input[name=playlist_name]");
    let typed = false;
    name.addEventListener("input", () => { typed = name.value.trim() !== ""; });
    const status = box.querySelector(".playlist-status");
    const say = (text, bad) => { status.textContent = text; status.classList.toggle("error", Boolean(bad)); };
    box.querySelector(".create-playlist").addEventListener("click", async () => {
      try {
        const body = { playlist_name: name.value, track_ids: getIds(), source, ...(credentials ? credentials() : {}) };
        const made = await api("/api/create_playlist", { method: "POST", body });
        say(`Playlist "${made.name}" created with ${made.track_count} songs.`);
      } catch (err) { say(`Not created: ${err.message}`, true); }
    });
    box.querySelector(".download-m3u").addEventListener("click", async () => {
      try {
        const response = await fetch("/api/playlist.m3u8", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ playlist_name: name.value, track_ids: getIds() }),
        });
        if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
        const url = URL.createObjectURL(await response.blob());
        const link = document.createElement("a");
        link.href = url;
        link.download = `${name.value || "playlist"}.m3u8`;
        document.body.append(link);
        link.click();
        link.remove();
        URL.revokeObjectURL(url);
      } catch (err) { say(`Not downloaded: ${err.message}`, true); }
    });
    return (suggested) => { if (!typed) name.value = suggested.slice(0, 200); };
  }

  return { api, picker, fillTracks, playlistBox, fmt, trackDetail, playButton };
})();
