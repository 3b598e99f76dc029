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

  // A text input that searches /api/search_tracks as you type and remembers the chosen track's id.
  function picker(input, { onPick } = {}) {
    const list = document.createElement("ul");
    list.className = "picker-list";
    list.setAttribute("role", "listbox");
    input.after(list);
    input.setAttribute("autocomplete", "off");
    let timer;
    input.addEventListener("input", () => {
      input.dataset.itemId = "";
      clearTimeout(timer);
      const text = input.value.trim();
      if (text.length < 2) { list.replaceChildren(); return; }
      timer = setTimeout(async () => {
        try {
          const found = await api(`/api/search_tracks?q=${encodeURIComponent(text)}&limit=10`);
          list.replaceChildren(...found.map((t) => {
            const li = document.createElement("li");
            li.setAttribute("role", "option");
            li.textContent = `${t.title} — ${t.author}`;
            li.addEventListener("mousedown", (event) => {
              event.preventDefault();
              input.value = `${t.title} — ${t.author}`;
              input.dataset.itemId = t.item_id;
              list.replaceChildren();
              if (onPick) onPick(t);
            });
            return li;
          }));
        } catch (err) {
          list.replaceChildren();
        }
      }, 200);
    });
    input.addEventListener("blur", () => setTimeout(() => list.replaceChildren(), 150));
    return () => input.dataset.itemId || "";
  }

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
  const fmt = (value, digits = 3) => (value == null ? "–" : Number(value).toFixed(digits));

  // Fill a <tbody> with tracks; `extra` adds columns.
  function fillTracks(tbody, tracks, extra = () => []) {
    tbody.replaceChildren(...tracks.map((t, i) => {
      const tr = document.createElement("tr");
      tr.dataset.itemId = t.item_id;
      tr.append(cell(String(i + 1)), cell(t.title), cell(t.author), cell(t.album),
        cell(t.tempo_bpm == null ? "–" : Number(t.tempo_bpm).toFixed(1)), cell(t.camelot || "–"),
        ...extra(t).map(cell));
      return tr;
    }));
  }

  // The playlist box under results: name, "Create playlist", "Download .m3u8".
  function playlistBox(box, getIds, { source, credentials } = {}) {
    const name = box.querySelector("input[name=playlist_name]");
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
  }

  return { api, picker, fillTracks, playlistBox, fmt };
})();
