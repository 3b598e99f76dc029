// The Mix page: seeds picked with the shared song picker, POST /api/mix with the form's constraints, and the switch
// of MPD's queue mode with its state (polled while the page is open). Self-contained apart from window.AudioMuse's
// api, picker and fillTracks.
(() => {
  "use strict";
  const { api, picker, fillTracks } = window.AudioMuse;
  const form = document.getElementById("mix-form");
  const message = document.getElementById("mix-message");
  const seedList = document.getElementById("mix-seeds");
  const seeds = [];
  const say = (element, text, bad) => { element.textContent = text; element.classList.toggle("error", Boolean(bad)); };

  function showSeeds() {
    seedList.replaceChildren(...seeds.map((t, i) => {
      const li = document.createElement("li");
      li.dataset.itemId = t.item_id;
      li.textContent = `${t.title} — ${t.author} `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", `Remove ${t.title}`);
      remove.addEventListener("click", () => { seeds.splice(i, 1); showSeeds(); });
      li.append(remove);
      return li;
    }));
  }
  const seedInput = document.getElementById("mix-seed");
  picker(seedInput, { onPick: (t) => {
    if (!seeds.some((s) => s.item_id === t.item_id)) seeds.push(t);
    seedInput.value = "";
    showSeeds();
  } });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!seeds.length) { say(message, "Pick at least one seed song first.", true); return; }
    const data = new FormData(form);
    const body = { tracks: seeds.map((t) => t.item_id), shuffle: Boolean(data.get("shuffle")) };
    for (const name of ["count", "no_repeat_artist", "no_repeat_album", "max_bpm_diff", "min_duration",
      "max_duration"]) {
      if (data.get(name) !== "") body[name] = Number(data.get(name));
    }
    if (data.get("exclude_artists")) body.exclude_artists = data.get("exclude_artists");
    try {
      const answer = await api("/api/mix", { method: "POST", body });
      fillTracks(document.getElementById("mix-rows"), answer.tracks, (t) => [t.reason]);
      document.getElementById("mix-results").hidden = false;
      say(message, `${answer.count} songs.`);
    } catch (err) { say(message, err.message, true); }
  });

  const toggle = document.getElementById("queue-toggle");
  const queueMessage = document.getElementById("queue-message");
  const when = (seconds) => new Date(seconds * 1000).toLocaleTimeString();
  function showQueue(state) {
    toggle.checked = state.enabled;
    document.getElementById("queue-min-ahead").textContent = state.min_ahead;
    document.getElementById("queue-add").textContent = state.add;
    let text = state.running ? `running (${state.state})` : (state.enabled ? "on, waiting for a worker" : "off");
    if (state.enabled && state.mediaserver_type !== "mpd") text += ` — the media server is ${state.mediaserver_type}, not MPD`;
    if (state.message) text += ` — ${state.message}`;
    document.getElementById("queue-state").textContent = text;
    const added = state.last_added;
    document.getElementById("queue-last-added").textContent = added
      ? `${when(added.at)}: ${added.songs.map((s) => `${s.title} — ${s.author}`).join("; ")}` : "–";
    const error = state.last_error;
    document.getElementById("queue-last-error").textContent = error ? `${when(error.at)}: ${error.message}` : "–";
  }
  async function refresh() {
    try { showQueue(await api("/api/mix/mpd_queue")); } catch (err) { say(queueMessage, err.message, true); }
  }
  toggle.addEventListener("change", async () => {
    try {
      showQueue(await api("/api/mix/mpd_queue", { method: "POST", body: { enabled: toggle.checked } }));
      say(queueMessage, toggle.checked ? "Queue mode on: a worker takes over within a few seconds."
        : "Queue mode off.");
    } catch (err) { say(queueMessage, err.message, true); toggle.checked = !toggle.checked; }
  });
  refresh();
  setInterval(refresh, 5000);
})();
