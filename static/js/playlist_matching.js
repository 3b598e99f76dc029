// Playlist matching: suggestions to accept or reject, a playlist to extend with songs that fit, the matching job.
(() => {
  "use strict";
  const { api, followTask, element, cell, row, playButton } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  let watching = null;

  async function decide(s, verdict, tr) {
    try {
      const done = await api(`/api/playlists/suggestions/${verdict}`, { method: "POST",
        body: { item_id: s.item_id, playlist_id: s.playlist_id } });
      $("match-status").textContent = verdict === "accept" ?
        `Added “${s.title}” to ${s.playlist_name}.` + (done.added === false ? " (It was there already.)" : "") :
        `“${s.title}” will not be suggested for ${s.playlist_name} again.`;
      tr.remove();
      await loadSuggestions();
      await loadPlaylists();  // after: what no playlist means depends on the last run
    } catch (err) {
      $("match-status").textContent = `Not done: ${err.message}`;
    }
  }

  let lastRun = null;  // the last matching run: what an empty list means depends on it
  async function loadSuggestions({ showLast = false } = {}) {
    const body = await api("/api/playlists/suggestions");
    lastRun = body.last_run || null;
    const list = body.suggestions;
    $("suggestions").hidden = !list.length;
    $("suggestions-empty").hidden = list.length > 0;
    $("suggestions-count").textContent = list.length ? `(${list.length})` : "";
    $("suggestions").querySelector("tbody").replaceChildren(...list.map((s) => {
      const song = cell(playButton(s.item_id, `${s.title} — ${s.artist}`));
      song.append(` ${s.title} — ${s.artist}`);
      const yes = element("button", { type: "button", class: "accept" }, "Accept");
      const no = element("button", { type: "button", class: "reject" }, "Reject");
      const actions = cell(yes);
      actions.append(" ", no);
      const tr = row([song, s.playlist_name, cell(s.reasons.join("; "), "why"), actions],
        { itemId: s.item_id, playlistId: s.playlist_id });
      yes.addEventListener("click", () => decide(s, "accept", tr));
      no.addEventListener("click", () => decide(s, "reject", tr));
      return tr;
    }));
    if (showLast && body.last_run && !watching) {
      $("match-status").textContent = `Last matching: ${body.last_run.status}` +
        (body.last_run.message ? ` — ${body.last_run.message}` : "");
    }
  }

  async function loadPlaylists() {
    const { playlists } = await api("/api/playlists/mine");
    const mine = playlists.filter((p) => !p.generated);
    $("continue-playlist").replaceChildren(...mine.map((p) =>
      element("option", { value: p.playlist_id }, `${p.name} (${p.songs} songs)`)));
    $("continue-go").disabled = !mine.length;
    if (!mine.length) {
      $("continue-message").textContent = lastRun && lastRun.status === "SUCCESS"
        ? "Your media server lists no playlist of your own (AudioMuse's own playlists are left out): make one " +
          "there, then press “Match every song now” again."
        : "No playlist of yours is known yet: press “Match every song now” to read them from your media server.";
    }
  }

  $("continue-go").addEventListener("click", async () => {
    const id = $("continue-playlist").value;
    try {
      const body = await api(`/api/playlists/${encodeURIComponent(id)}/continue?n=${$("continue-n").value}`);
      $("continue-message").textContent = `${body.results.length} songs fit ${body.name}:`;
      $("continue-results").replaceChildren(...body.results.map((r) => {
        const li = element("li");
        const box = element("input", { type: "checkbox", value: r.item_id, "aria-label": `Select ${r.title}` });
        box.checked = true;
        li.append(box, " ", playButton(r.item_id, `${r.title} — ${r.artist}`), ` ${r.title} — ${r.artist} `,
          element("span", { class: "why" }, r.reasons.join("; ")));
        return li;
      }));
      $("continue-add").hidden = !body.results.length;
    } catch (err) {
      $("continue-message").textContent = `Could not extend it: ${err.message}`;
    }
  });
  $("continue-add").addEventListener("click", async () => {
    const id = $("continue-playlist").value;
    const ids = [...$("continue-results").querySelectorAll("input:checked")].map((b) => b.value);
    try {
      const done = await api(`/api/playlists/${encodeURIComponent(id)}/add`, { method: "POST", body: { item_ids: ids } });
      $("continue-message").textContent = `Added ${done.added} songs to ${done.playlist}.`;
      $("continue-results").replaceChildren();
      $("continue-add").hidden = true;
      await loadSuggestions();
      await loadPlaylists();
    } catch (err) {
      $("continue-message").textContent = `Not added: ${err.message}`;
    }
  });

  async function follow(taskId) {
    watching = taskId;
    const show = (task) => { $("match-status").textContent = `${task.status} — ${task.status_message || ""}`; };
    const task = await followTask(taskId, show);
    watching = null;
    await loadSuggestions();
    await loadPlaylists();  // after: what no playlist means depends on the last run
    show(task);
  }

  $("match-run").addEventListener("click", async () => {
    try {
      const started = await api("/api/playlists/match", { method: "POST", body: { full: true } });
      follow(started.task_id);
    } catch (err) {
      $("match-status").textContent = `Could not start: ${err.message}`;
    }
  });
  loadSuggestions({ showLast: true }).then(loadPlaylists).catch((err) => {
    $("match-status").textContent = `Could not load: ${err.message}`;
  });
})();
