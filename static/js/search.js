// Library search: words and sound, facets that filter and count, results paged by cursor; the page's query string
// is the whole state (shareable), and the same names are the API's parameters.
(() => {
  "use strict";
  const { api, cell, element, trackRow, playlistBox, trackDetail } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const form = $("search-form");
  const rows = $("search-rows");
  const message = $("search-message");
  const more = $("search-more");
  const FILTERS = ["bpmMin", "bpmMax", "keyCamelot", "energy", "tag"];
  let state = new URLSearchParams(window.location.search);
  let nextCursor = null;
  let shown = [];
  const suggestName = playlistBox(document.querySelector(".playlist-box"), () => shown.map((r) => r.track.item_id),
    { source: "text_search" });

  function apiQuery(cursor) {
    const query = new URLSearchParams();
    query.set("q", state.get("q") || "");
    const mode = state.get("mode") || "hybrid";
    if (mode === "keyword") query.set("semantic", "false");
    else query.set("semantic_weight", mode === "semantic" ? "1" : (state.get("w") || "0.3"));
    if (state.get("fusion")) query.set("fusion", state.get("fusion"));
    for (const name of FILTERS) if (state.get(name)) query.set(name, state.get(name));
    query.set("limit", state.get("limit") || "25");
    if (cursor) query.set("cursor", cursor);
    return query;
  }

  function writeForm() {
    $("search-q").value = state.get("q") || "";
    $("search-mode").value = state.get("mode") || "hybrid";
    $("search-weight").value = state.get("w") || "0.3";
    $("search-fusion").value = state.get("fusion") || "weighted";
    $("search-weight").disabled = $("search-mode").value !== "hybrid";
  }

  function readForm() {
    const next = new URLSearchParams();
    const q = $("search-q").value.trim();
    if (q) next.set("q", q);
    if ($("search-mode").value !== "hybrid") next.set("mode", $("search-mode").value);
    if ($("search-weight").value && $("search-weight").value !== "0.3") next.set("w", $("search-weight").value);
    if ($("search-fusion").value !== "weighted") next.set("fusion", $("search-fusion").value);
    for (const name of [...FILTERS, "limit"]) if (state.get(name)) next.set(name, state.get(name));
    return next;
  }

  function option(container, { type, name, value, label, count, checked, onChange }) {
    const wrap = document.createElement("label");
    const input = document.createElement("input");
    input.type = type;
    input.name = name;
    input.value = value;
    input.checked = checked;
    input.addEventListener("change", () => onChange(input));
    const text = document.createElement("span");
    text.textContent = label;
    const number = document.createElement("span");
    number.className = "count";
    number.textContent = count == null ? "" : String(count);
    wrap.append(input, text, number);
    container.append(wrap);
  }

  function setFilter(changes) {
    for (const [k, v] of Object.entries(changes)) {
      if (v == null || v === "") state.delete(k);
      else state.set(k, v);
    }
    run(true);
  }

  function renderFacets(facets) {
    const bpm = $("facet-bpm");
    bpm.replaceChildren();
    const current = `${state.get("bpmMin") || ""}-${state.get("bpmMax") || ""}`;
    option(bpm, { type: "radio", name: "bpm", value: "", label: "Any", checked: current === "-",
      onChange: () => setFilter({ bpmMin: null, bpmMax: null }) });
    for (const b of facets.bpm) {
      const value = `${b.min}-${b.max ?? ""}`;
      option(bpm, { type: "radio", name: "bpm", value, label: b.range, count: b.count, checked: current === value,
        onChange: () => setFilter({ bpmMin: b.min, bpmMax: b.max }) });
    }
    const energy = $("facet-energy");
    energy.replaceChildren();
    option(energy, { type: "radio", name: "energy", value: "", label: "Any", checked: !state.get("energy"),
      onChange: () => setFilter({ energy: null }) });
    for (const e of facets.energy) {
      option(energy, { type: "radio", name: "energy", value: e.level, label: e.level, count: e.count,
        checked: state.get("energy") === e.level, onChange: () => setFilter({ energy: e.level }) });
    }
    const keys = $("facet-camelot");
    keys.replaceChildren();
    const chosen = new Set((state.get("keyCamelot") || "").split(",").filter(Boolean));
    for (const k of facets.camelot) {
      option(keys, { type: "checkbox", name: "keyCamelot", value: k.key, label: k.key, count: k.count,
        checked: chosen.has(k.key), onChange: (input) => {
          if (input.checked) chosen.add(k.key); else chosen.delete(k.key);
          setFilter({ keyCamelot: [...chosen].join(",") });
        } });
    }
    const tags = $("facet-tags");
    tags.replaceChildren();
    option(tags, { type: "radio", name: "tag", value: "", label: "Any", checked: !state.get("tag"),
      onChange: () => setFilter({ tag: null }) });
    const listed = facets.tags.map((t) => t.tag);
    if (state.get("tag") && !listed.includes(state.get("tag"))) facets.tags.unshift({ tag: state.get("tag"), count: 0 });
    for (const t of facets.tags) {
      option(tags, { type: "radio", name: "tag", value: t.tag, label: t.tag, count: t.count,
        checked: state.get("tag") === t.tag, onChange: () => setFilter({ tag: t.tag }) });
    }
  }

  // The title, the shown file's format, and "N versions" that opens the song's other files under the row.
  function titleCell(r) {
    const t = r.track;
    const box = element("span", {}, t.title ?? "–");
    if (t.format) box.append(" ", element("span", { class: "badge", title: t.copy_note || "" }, t.format));
    if (r.version_count > 1) {
      const id = `versions-${t.item_id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      const toggle = element("button", { type: "button", class: "link versions-toggle", "aria-expanded": "false",
        "aria-controls": id }, `${r.version_count} versions`);
      box.append(" ", toggle);
    }
    return cell(box);
  }

  function versionsRow(r, owner) {
    const id = `versions-${r.track.item_id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const list = element("ul", { class: "version-files" });
    for (const v of r.versions) {
      list.append(element("li", { "data-item-id": v.item_id }, `${v.title} — ${trackDetail(v) || v.item_id}`));
    }
    const td = cell(list);
    td.colSpan = 8;
    const tr = element("tr", { id, class: "versions-row" });
    tr.hidden = true;
    tr.append(td);
    const toggle = owner.querySelector(".versions-toggle");
    toggle.addEventListener("click", () => {
      tr.hidden = !tr.hidden;
      toggle.setAttribute("aria-expanded", String(!tr.hidden));
    });
    return tr;
  }

  function appendRows(results) {
    for (const r of results) {
      const t = r.track;
      const why = r.match_reasons.join(" + ") + (r.match_reasons.includes("filter") ? "" :
        ` (${r.keyword_score.toFixed(2)} / ${r.semantic_score.toFixed(2)})`);
      // an unknown value shows as "–"
      const row = trackRow(shown.length + 1, t.item_id, `${t.title} — ${t.artist}`, [titleCell(r),
        t.artist ?? "–", t.album ?? "–", t.bpm == null ? "–" : t.bpm.toFixed(0), t.camelot ?? "–",
        t.energy_level ?? "–", cell(why, "why")]);
      rows.append(row);
      if (r.version_count > 1) rows.append(versionsRow(r, row));
      shown.push(r);
    }
  }

  async function run(push) {
    if (push) history.pushState(null, "", `?${state}`);
    writeForm();
    if (!state.get("q") && !FILTERS.some((f) => state.get(f))) {
      message.textContent = "Type words, or pick a filter to browse.";
      return;
    }
    message.textContent = "Searching…";
    try {
      let body;
      for (let tries = 0; ; tries += 1) {
        try {
          body = await api(`/api/v1/search?${apiQuery()}`);
          break;
        } catch (err) {  // 503 right after a start: the search's caches are still being built; it says so
          if (err.status !== 503 || tries >= 60) throw err;
          message.textContent = `${err.message[0].toUpperCase()}${err.message.slice(1)}…`;
          await new Promise((resolve) => { setTimeout(resolve, 2000); });
        }
      }
      rows.replaceChildren();
      shown = [];
      appendRows(body.results);
      renderFacets(body.facets);
      nextCursor = body.nextCursor;
      more.hidden = !nextCursor;
      $("search-count").textContent = `(${body.totalMatches})`;
      const notes = [];
      if (body.mode !== "keyword" && !body.semantic_available) notes.push("sound search is unavailable, word matches only");
      if (body.understood === false) notes.push("the words name nothing the sound search knows, word matches only");
      message.textContent = body.totalMatches ? `${body.totalMatches} song${body.totalMatches === 1 ? "" : "s"}` +
        (notes.length ? ` — ${notes.join("; ")}` : "") :
        body.message || "No songs match." + (notes.length ? ` (${notes[0]})` : "");
      document.querySelector(".playlist-box").hidden = !body.results.length;
      suggestName(`Search ${state.get("q") || "filters"}`);
    } catch (err) {
      message.textContent = `Search failed: ${err.message}`;
    }
  }

  more.addEventListener("click", async () => {
    try {
      const body = await api(`/api/v1/search?${apiQuery(nextCursor)}`);
      appendRows(body.results);
      nextCursor = body.nextCursor;
      more.hidden = !nextCursor;
    } catch (err) {
      message.textContent = `Could not load more: ${err.message}`;
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state = readForm();
    run(true);
  });
  $("search-mode").addEventListener("change", () => { $("search-weight").disabled = $("search-mode").value !== "hybrid"; });
  $("search-clear").addEventListener("click", () => {
    for (const name of FILTERS) state.delete(name);
    run(true);
  });
  window.addEventListener("popstate", () => {
    state = new URLSearchParams(window.location.search);
    run(false);
  });
  run(false);
})();
