(() => {
  "use strict";
  const { api, say: sayIn, picker, fillTracks, playlistBox, fmt } = window.AudioMuse;
  const form = document.getElementById("alchemy-form");
  const message = document.getElementById("alchemy-message");
  const input = document.getElementById("alchemy-song");
  // Enter in the song field adds the song (it does not run the blend)
  const songId = picker(input, { onEnter: () => addItem("ADD") });
  const list = document.getElementById("alchemy-items");
  const box = document.querySelector(".playlist-box");
  const items = [];
  let ids = [];
  const suggestName = playlistBox(box, () => ids, { source: "alchemy" });
  const say = (text, bad) => sayIn(message, text, bad);

  function addItem(op) {
    if (!songId()) { say("Pick a song from the list first.", true); return; }
    items.push({ id: songId(), op, label: input.value, title: input.dataset.title || input.value });
    const li = document.createElement("li");
    li.textContent = `${op === "ADD" ? "+" : "−"} ${input.value}`;
    li.dataset.op = op;
    list.append(li);
    input.value = "";
    input.dataset.itemId = "";
    say("");
  }
  document.getElementById("add-song").addEventListener("click", () => addItem("ADD"));
  document.getElementById("subtract-song").addEventListener("click", () => addItem("SUBTRACT"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!items.some((i) => i.op === "ADD")) {  // said here in words, not as the API's message about `items`
      say("Add at least one song to blend first: pick it, then press Add (or Enter).", true);
      input.focus();
      return;
    }
    const data = new FormData(form);
    try {
      const body = await api("/api/alchemy", { method: "POST", body: {
        items: items.map(({ id, op }) => ({ id, op })), n: Number(data.get("n")),
        temperature: Number(data.get("temperature")), subtract_distance: Number(data.get("subtract_distance")) } });
      fillTracks(document.getElementById("alchemy-rows"), body.results, (t) => [fmt(t.score)]);
      document.getElementById("alchemy-removed").textContent =
        `${body.filtered_out.length} songs removed for being close to the subtracted ones (seed ${body.seed}).`;
      document.getElementById("alchemy-results").hidden = false;
      ids = [...items.filter((i) => i.op === "ADD").map((i) => i.id), ...body.results.map((t) => t.item_id)];
      box.hidden = body.results.length === 0;
      const added = items.filter((i) => i.op === "ADD").map((i) => i.title);
      const taken = items.filter((i) => i.op === "SUBTRACT").map((i) => i.title);
      suggestName(added.join(" + ") + (taken.length ? ` − ${taken.join(" − ")}` : ""));
      const kinds = ["kept", "removed", "add", "subtract", "add centroid", "subtract centroid"];
      const traces = kinds.map((kind) => {
        const points = body.projection.filter((p) => p.kind === kind);
        return { name: kind, type: "scatter", mode: "markers", x: points.map((p) => p.x), y: points.map((p) => p.y),
          text: points.map((p) => p.title), marker: { size: kind.includes("centroid") ? 14 : 8 } };
      }).filter((trace) => trace.x.length);
      const layout = window.AudioMuse.themed({ margin: { t: 20 }, legend: { orientation: "h" } });
      Plotly.newPlot("alchemy-chart", traces, layout,
        { displaylogo: false, responsive: true });
      say(`${body.results.length} songs.`);
    } catch (err) { say(err.message, true); }
  });
})();
