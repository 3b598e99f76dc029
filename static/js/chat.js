// The instant-playlist page: send the request, show the songs, the path taken and why, the executed query, and
// create the playlist on the media server.
(() => {
  "use strict";
  const { api, say, element, fillRows, trackRow, fmt } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const form = $("chat-form"), input = $("chat-input"), provider = $("chat-provider"), model = $("chat-model");
  const ollamaUrl = $("chat-ollama-url"), message = $("chat-message"), go = $("chat-go");
  let status = null;
  let ids = [];

  function showCalls(calls) {
    fillRows($("ai-log"), calls, (c) => [c.at, c.provider, c.model, String(c.seconds), c.outcome]);
  }

  function syncProvider() {
    const chosen = provider.value;
    $("ollama-url-label").hidden = chosen !== "ollama";
    model.disabled = chosen === "none";
    model.value = chosen === "none" ? "" : (status.models[chosen] || "");
  }

  async function loadStatus() {
    status = await api("/chat/api/status");
    provider.replaceChildren(...status.providers.map((p) => {
      const option = document.createElement("option");
      option.value = p;
      option.textContent = p === "none" ? "none (AudioMuse reads the request)" : p;
      return option;
    }));
    provider.value = status.default_provider;
    ollamaUrl.value = status.ollama_server_url;
    syncProvider();
    const role = status.role;
    if (role && !role.ready) say($("role-status"), `The database role ${role.name} is not set up: ${role.problem}`, true);
    else if (role) say($("role-status"), `Queries run read-only as the database role ${role.name}, which can read only the chat view.`);
    showCalls(status.calls);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) { say(message, "Type a request first.", true); input.focus(); return; }
    go.disabled = true;
    say(message, "Making your playlist…");
    $("chat-warnings").replaceChildren();
    try {
      const body = { userInput: text, ai_provider: provider.value };
      if (provider.value !== "none" && model.value.trim()) body.ai_model = model.value.trim();
      if (provider.value === "ollama" && ollamaUrl.value.trim()) body.ollama_server_url = ollamaUrl.value.trim();
      const { response } = await api("/chat/api/chatPlaylist", { method: "POST", body });
      say(message, response.message);
      $("chat-warnings").replaceChildren(...response.warnings.map((w) => element("li", {}, w)));
      $("chat-path").textContent = response.path === "llm"
        ? `Written by ${response.ai_provider_used} (${response.ai_model_selected}).`
        : `Made without the LLM${response.understood ? `; understood: ${response.understood.join(", ") || "nothing"}` : ""}.`;
      $("chat-query").textContent = response.executed_query;
      $("chat-params").textContent = JSON.stringify(response.query_params);
      ids = response.query_results.map((r) => r.item_id);
      $("chat-count").textContent = `(${ids.length} songs)`;
      $("chat-rows").replaceChildren(...response.query_results.map((r, i) => trackRow(i + 1, r.item_id,
        `${r.title} — ${r.artist}`, [r.title, r.artist, r.album, fmt(r.tempo_bpm, 0), r.camelot || "–"])));
      $("chat-results").hidden = false;
      $("chat-create").disabled = ids.length === 0;
      $("chat-playlist-name").value = text.slice(0, 60);
      say($("chat-playlist-status"), "");
    } catch (err) {
      say(message, `No playlist: ${err.message}`, true);
    } finally {
      go.disabled = false;
      api("/chat/api/status").then((s) => showCalls(s.calls)).catch(() => {});
    }
  });

  $("chat-create").addEventListener("click", async () => {
    try {
      const made = await api("/chat/api/create_playlist", { method: "POST",
        body: { playlist_name: $("chat-playlist-name").value, item_ids: ids } });
      say($("chat-playlist-status"), made.message);
    } catch (err) { say($("chat-playlist-status"), `Not created: ${err.message}`, true); }
  });

  provider.addEventListener("change", syncProvider);
  loadStatus().catch((err) => say(message, `The page could not load its settings: ${err.message}`, true));
})();
