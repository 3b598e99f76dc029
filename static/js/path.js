(() => {
  "use strict";
  const { api, say: sayIn, picker, fillTracks, playlistBox, fmt, lineChart } = window.AudioMuse;
  const form = document.getElementById("path-form");
  const message = document.getElementById("path-message");
  const startId = picker(document.getElementById("start"));
  const endId = picker(document.getElementById("end"));
  const box = document.querySelector(".playlist-box");
  let ids = [];
  const suggestName = playlistBox(box, () => ids, { source: "path" });
  const say = (text, bad) => sayIn(message, text, bad);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!startId() || !endId()) { say("Pick both songs from the lists first.", true); return; }
    const data = new FormData(form);
    const params = new URLSearchParams({ start_song_id: startId(), end_song_id: endId(),
      max_steps: data.get("max_steps"), path_fix_size: data.get("path_fix_size") ? "true" : "false" });
    try {
      const body = await api(`/api/find_path?${params}`);
      const steps = body.step_distances;
      fillTracks(document.getElementById("path-rows"), body.path, (t) => {
        const i = body.path.indexOf(t);
        return [i < steps.length ? fmt(steps[i]) : "–"];
      });
      document.getElementById("path-results").hidden = false;
      ids = body.path.map((t) => t.item_id);
      box.hidden = false;
      suggestName(`${body.path[0].title} → ${body.path[body.path.length - 1].title}`);
      const labels = body.path.map((t, i) => `${i + 1}. ${t.title}`);
      // the axis in path order: Plotly orders categories as the traces first name them, and the hop line starts at
      // the second song, so without this the start song would be put last
      const along = (pick) => body.path.map((t, i) => [i + 1, pick(t) == null ? NaN : Number(pick(t))]);
      const curves = document.getElementById("path-curves");
      curves.replaceChildren(document.createElement("div"), document.createElement("div"));
      lineChart(curves.children[0], along((t) => t.tempo_bpm), { label: "Tempo along the path (BPM)", x: "song ",
        format: (v) => v.toFixed(0) });
      lineChart(curves.children[1], along((t) => t.energy), { label: "Energy along the path", x: "song ",
        format: (v) => v.toFixed(2) });
      Plotly.newPlot("path-chart", [
        { x: labels.slice(1), y: body.hop_distances, name: "distance from the previous song", type: "scatter",
          mode: "lines+markers" },
        { x: labels, y: steps, name: "distance to the step's target", type: "scatter", mode: "lines+markers" },
      ], window.AudioMuse.themed({ margin: { t: 20, b: 120 },
        xaxis: { type: "category", categoryorder: "array", categoryarray: labels },
        yaxis: { title: { text: "cosine distance" } }, legend: { orientation: "h" } }),
      { displaylogo: false, responsive: true });
      say(`${body.path.length} songs.` + (body.shortfall ? ` ${body.shortfall[0].toUpperCase()}${body.shortfall.slice(1)}` :
        body.targets_missed ? ` ${body.targets_missed} steps without a match.` : ""));
    } catch (err) { say(err.message, true); }
  });
})();
