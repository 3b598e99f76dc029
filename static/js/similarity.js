(() => {
  "use strict";
  const { api, say: sayIn, picker, fillTracks, playlistBox, fmt } = window.AudioMuse;
  const form = document.getElementById("similar-form");
  const message = document.getElementById("similar-message");
  const seedId = picker(document.getElementById("seed"));
  const box = document.querySelector(".playlist-box");
  let ids = [];
  const suggestName = playlistBox(box, () => ids, { source: "similar" });
  const seedTitle = () => document.getElementById("seed").dataset.title || "the seed";

  const say = (text, bad) => sayIn(message, text, bad);

  function show(title, seed, tracks, why) {
    document.getElementById("results-title").textContent = title;
    fillTracks(document.getElementById("similar-rows"), tracks, (t) => [fmt(t.distance), why(t)]);
    document.getElementById("similar-results").hidden = false;
    ids = [seed, ...tracks.map((t) => t.item_id)];
    box.hidden = tracks.length === 0;
    suggestName(`${title === "Similar songs" ? "Similar to" : "Mixable with"} ${seedTitle()}`);
    say(`${tracks.length} songs.`);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const seed = seedId();
    if (!seed) { say("Pick a seed song from the list first.", true); return; }
    const data = new FormData(form);
    const params = new URLSearchParams({ item_id: seed, n: data.get("n"), max_per_artist: data.get("max_per_artist"),
      radius_similarity: data.get("radius_similarity") ? "true" : "false",
      eliminate_duplicates: data.get("eliminate_duplicates") ? "true" : "false" });
    for (const name of ["min_bpm", "max_bpm", "min_duration", "max_duration", "exclude_artists"]) {
      if (data.get(name)) params.set(name, data.get(name));
    }
    try {
      show("Similar songs", seed, await api(`/api/similar_tracks?${params}`), () => "semantic");
    } catch (err) { say(err.message, true); }
  });

  // a seed handed over in the address (the home page's "similar songs"): picked and searched at once
  const handed = new URLSearchParams(window.location.search);
  if (handed.get("item_id")) {
    const input = document.getElementById("seed");
    input.value = handed.get("title") || handed.get("item_id");
    input.dataset.itemId = handed.get("item_id");
    input.dataset.title = (handed.get("title") || "").split(" — ")[0];
    form.requestSubmit();
  }

  document.getElementById("find-mixable").addEventListener("click", async () => {
    const seed = seedId();
    if (!seed) { say("Pick a seed song from the list first.", true); return; }
    const data = new FormData(form);
    const params = new URLSearchParams({ item_id: seed, n: data.get("n"), mode: data.get("mode"),
      bpm_tolerance: data.get("bpm_tolerance"), max_per_artist: data.get("max_per_artist") });
    try {
      const body = await api(`/api/mixable_tracks?${params}`);
      show(`Mixable tracks (${body.mode})`, seed, body.results, (t) => t.reasons.join(", "));
      document.getElementById("bpm-tolerance-meaning").textContent =
        `In ${body.mode} mode the tolerance is ${body.bpm_tolerance.meaning}.`;
    } catch (err) { say(err.message, true); }
  });
})();
