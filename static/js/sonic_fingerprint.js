(() => {
  "use strict";
  const { api, say: sayIn, fillTracks, playlistBox } = window.AudioMuse;
  const form = document.getElementById("fingerprint-form");
  const message = document.getElementById("fingerprint-message");
  const box = document.querySelector(".playlist-box");
  let ids = [];
  const credentials = () => {
    const data = new FormData(form);
    return data.get("user") && data.get("secret") ? { user: data.get("user"), secret: data.get("secret") } : {};
  };
  playlistBox(box, () => ids, { source: "fingerprint", credentials });
  const say = (text, bad) => sayIn(message, text, bad);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    say("Reading your play history…");
    try {
      const tracks = await api("/api/sonic_fingerprint/generate", { method: "POST",
        body: { n: Number(data.get("n")), ...credentials() } });
      fillTracks(document.getElementById("fingerprint-rows"), tracks,
        (t) => [t.role === "seed" ? "your top songs" : "discovery"]);
      document.getElementById("fingerprint-results").hidden = false;
      ids = tracks.map((t) => t.item_id);
      box.hidden = tracks.length === 0;
      say(tracks.length ? `${tracks.length} songs.`
        : "The media server reports no played songs that are analyzed here.", tracks.length === 0);
    } catch (err) { say(err.message, true); }
  });
})();
