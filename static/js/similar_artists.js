// The "Similar artists" section of the Similar songs page: similar artists with the songs that explain each match
// (a ▶ preview per song), and artist radio, listed and publishable like the other playlists.
(() => {
  "use strict";
  const { api, fillTracks, playlistBox, playButton, fmt } = window.AudioMuse;
  const section = document.getElementById("similar-artists");
  const form = document.getElementById("artists-form");
  const input = document.getElementById("artist-query");
  const options = document.getElementById("artist-options");
  const message = document.getElementById("artists-message");
  const results = document.getElementById("artist-results");
  const radio = document.getElementById("radio-results");
  const box = radio.querySelector(".playlist-box");
  let radioIds = [];
  const suggestName = playlistBox(box, () => radioIds, { source: "artist_radio" });
  const say = (text, bad) => { message.textContent = text; message.classList.toggle("error", Boolean(bad)); };
  const ids = new Map();  // a name offered in the list → its artist id

  let typing = null;
  input.addEventListener("input", () => {
    clearTimeout(typing);
    const text = input.value.trim();
    if (text.length < 2) return;
    typing = setTimeout(async () => {
      try {
        const found = await api(`/api/search_artists?${new URLSearchParams({ query: text })}`);
        options.replaceChildren(...found.map((a) => {
          ids.set(a.artist, a.artist_id);
          const option = document.createElement("option");
          option.value = a.artist;
          option.label = `${a.track_count} songs`;
          return option;
        }));
      } catch (err) { say(err.message, true); }
    }, 200);
  });
  const chosen = () => ids.get(input.value.trim()) || input.value.trim();

  function songs(label, list) {
    const block = document.createElement("div");
    block.className = "artist-songs";
    const heading = document.createElement("span");
    heading.textContent = `${label}: `;
    block.append(heading);
    for (const song of list) {
      const item = document.createElement("span");
      item.className = "artist-song";
      item.dataset.itemId = song.item_id;
      item.append(playButton(song.item_id, song.title), ` ${song.title} `);
      block.append(item);
    }
    return block;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const artist = chosen();
    if (!artist) { say("Type an artist first.", true); return; }
    const params = new URLSearchParams({ artist, n: new FormData(form).get("n"), include_component_matches: "true" });
    try {
      const found = await api(`/api/similar_artists?${params}`);
      results.replaceChildren(...found.map((row) => {
        const li = document.createElement("li");
        li.className = "artist-match";
        li.dataset.artistId = row.artist_id;
        const name = document.createElement("strong");
        name.textContent = row.artist;
        li.append(name, ` — divergence ${fmt(row.divergence)}, ${row.track_count} songs`);
        const best = (row.component_matches || [])[0];
        if (best) {
          li.append(songs(`${input.value.trim()}`, best.artist1_representative_songs),
            songs(row.artist, best.artist2_representative_songs));
        }
        return li;
      }));
      say(found.length ? `${found.length} similar artists.` : "No other artist to compare with yet.");
    } catch (err) { results.replaceChildren(); say(err.message, true); }
  });

  document.getElementById("artist-radio").addEventListener("click", async () => {
    const artist = chosen();
    if (!artist) { say("Type an artist first.", true); return; }
    const params = new URLSearchParams({ artist, n: new FormData(form).get("radio_n") });
    try {
      const tracks = await api(`/api/artist_radio?${params}`);
      fillTracks(document.getElementById("radio-rows"), tracks, (t) => [fmt(t.distance)]);
      radioIds = tracks.map((t) => t.item_id);
      document.getElementById("radio-title").textContent = `Artist radio: ${input.value.trim()}`;
      radio.hidden = false;
      box.hidden = tracks.length === 0;
      suggestName(`${input.value.trim()} radio`);
      say(`${tracks.length} songs in the radio.`);
    } catch (err) { say(err.message, true); }
  });
  section.dataset.ready = "true";
})();
