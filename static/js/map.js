// The music map: every point of the binary map drawn with WebGL (static/js/map_points.js), coloured by top tag; a
// legend that hides and shows tags; pan and zoom (drag, wheel, keys); a selection filled by clicks, lassos and
// boxes; names loaded on hover by point index; a search that highlights a song; song paths drawn on the map; the
// playlist box for the selection.
(() => {
  "use strict";
  const { api, followTask, sleep, say, element, picker, playlistBox, playButton } = window.AudioMuse;
  const { decode, pointOf, PointIndex, View, createRenderer, createPixelRenderer, STEPS, rgbOf } = window.MapPoints;
  const settings = window.MAP_SETTINGS;
  const $ = (id) => document.getElementById(id);
  const plot = $("map-plot");
  const message = $("map-message");
  const selectionMessage = $("selection-message");
  const tooltip = plot.querySelector(".map-tooltip");
  const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad", "#f08c00", "#5c940d",
    "#d6336c", "#364fc7", "#0ca678", "#ae3ec9", "#e67700", "#1c7ed6", "#a61e4d", "#74b816", "#4263eb", "#f76707",
    "#099268", "#862e9c"];
  const UNTAGGED = "(no tag)";
  const NEAR_PX = 8;
  const ITEMS_AT_ONCE = 1000;

  const state = {
    percent: 25, map: null, grid: null, tags: [], colours: new Map(), hidden: new Set(), visible: 0,
    selection: [], highlight: null, highlightOn: true, paths: [], loading: 0, mode: "lasso", drag: null,
    hover: null, focused: false, moving: false, frameMs: 0,
  };
  const view = new View();
  const known = new Map();  // item id -> {title, artist, point}: every song the page has named
  const named = new Map();  // point index -> its item (from /api/map/items), for the loaded map's version

  // WebGL draws the points; where it runs in software (no GPU) a large map is written into a 2-D canvas's pixels
  // instead, ten times faster there. ?renderer=webgl2 or ?renderer=pixels forces one (to compare them).
  const glCanvas = plot.querySelector("canvas.map-points");
  const pixelCanvas = plot.querySelector("canvas.map-pixels");
  const overlay = plot.querySelector("canvas.map-overlay");
  const ink = overlay.getContext("2d");
  const SOFTWARE_WEBGL_MAX = 50000;
  const forced = new URLSearchParams(window.location.search).get("renderer");
  let webgl = null;
  try {
    if (forced !== "pixels") webgl = createRenderer(glCanvas);
  } catch (err) {
    webgl = null;  // a shader the driver refuses: the pixels will do
  }
  let pixels = null;
  let renderer = null;
  function useRendererFor(count) {
    const next = webgl && (forced === "webgl2" || !webgl.software || count <= SOFTWARE_WEBGL_MAX) ? webgl
      : (pixels = pixels || createPixelRenderer(pixelCanvas));
    glCanvas.hidden = next !== webgl;
    pixelCanvas.hidden = next === webgl;
    renderer = next;
    renderer.background = rgbOf(getComputedStyle(plot).getPropertyValue("--card"));
    plot.dataset.renderer = next.kind;
  }
  useRendererFor(0);
  // the points drawn on the page's own background: dark in the dark theme, redrawn when the theme changes
  const followTheme = () => { renderer.background = rgbOf(getComputedStyle(plot).getPropertyValue("--card")); redraw(); };
  document.addEventListener("audiomuse:theme", followTheme);
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", followTheme);

  const tagOf = (code) => (code === state.map.none ? UNTAGGED : state.map.header.tags[code]);
  function colourOf(i) {
    if (PALETTE[i]) return PALETTE[i];
    // past the palette: golden-angle hues at 55 % saturation, 45 % lightness, as hex
    const h = (i * 137.508) % 360;
    const f = (n) => {
      const k = (n + h / 30) % 12;
      const a = 0.55 * Math.min(0.45, 0.55);
      return Math.round(255 * (0.45 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    };
    return `#${[f(0), f(8), f(4)].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
  }

  // --- loading ---------------------------------------------------------------------------------------------
  // The binary map; a 503 means it is being prepared: say so and ask again.
  async function fetchMap(percent) {
    for (let attempt = 0; ; attempt += 1) {
      const early = window.MAP_PREFETCH;
      window.MAP_PREFETCH = null;
      try {
        const buffer = await (attempt === 0 && early && early.percent === percent ? early.map
          : api(`/api/map?percent=${percent}&format=binary`, { as: "blob" }).then((blob) => blob.arrayBuffer()));
        return decode(buffer);
      } catch (err) {
        if (err.status !== 503 || attempt >= 60) throw err;
        say(message, (err.body && err.body.error) || "The map is being prepared…");
        await sleep(2000);
      }
    }
  }

  async function load(percent) {
    const mine = ++state.loading;
    state.percent = percent;
    document.querySelectorAll(".percent").forEach((b) => b.setAttribute("aria-pressed",
      String(Number(b.dataset.percent) === percent)));
    say(message, `Loading ${percent} % of the map…`);
    let map;
    try {
      map = await fetchMap(percent);
    } catch (err) {
      if (mine === state.loading) say(message, `The map could not be loaded: ${err.message}`, true);
      return;
    }
    if (mine !== state.loading) return;  // a newer load replaced this one
    // another sample of the same map keeps the view (and the names of its points); a changed map starts afresh
    const sameMap = state.map && state.map.header.version === map.header.version;
    if (!sameMap) named.clear();
    state.map = map;
    state.grid = new PointIndex(map);
    const counts = new Map();
    for (let i = 0; i < map.count; i += 1) counts.set(map.codes[i], (counts.get(map.codes[i]) || 0) + 1);
    state.tags = [...counts.entries()].map(([code, count]) => [tagOf(code), count, code])
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    state.tags.forEach(([tag]) => { if (!state.colours.has(tag)) state.colours.set(tag, colourOf(state.colours.size)); });
    useRendererFor(map.count);
    renderer.load(map);
    state.frameMs = 0;
    if (!sameMap) view.fit(map.header.bounds);
    renderLegend();
    redraw();
    describe(map.header);
    if (!map.count) {
      message.replaceChildren(map.header.message || "Nothing has been analyzed yet.", " ",
        element("a", { href: "/analysis" }, "Go to Analysis"));
    } else {
      say(message, `${map.header.count} of ${map.header.total} songs shown (${percent} %).`);
    }
    showJobState();
  }

  function describe(header) {
    if (!header.total) { $("map-projection").textContent = ""; return; }
    const parts = [`Projection: ${header.projection.toUpperCase()}`];
    if (header.built_at) parts.push(`built ${header.built_at.replace("T", " ").slice(0, 16)}`);
    if (header.placed_since_build) parts.push(`${header.placed_since_build} songs placed since`);
    if (header.placed_now) parts.push(`${header.placed_now} new songs placed by their nearest neighbours`);
    if (header.fallback_reason) parts.push(`PCA because ${header.fallback_reason}`);
    say($("map-projection"), parts.join(" · "));
  }

  async function showJobState() {
    try {
      const status = await api("/api/map/status");
      const job = status.last_job;
      if (job && job.status === "FAILURE") {
        const served = status.served ? status.served.projection.toUpperCase() : "nothing";
        say($("map-projection"), `The last map build failed: ${job.message}. Showing the ${served} map meanwhile.`,
          true);
      }
    } catch (err) { /* the map itself loaded; the job state is extra */ }
  }

  // Names of the points `indices` of `map` (the one loaded when they were picked) from /api/map/items,
  // remembered for this version of the map. null when another map has been loaded since, or when the server's map
  // has changed (409): then it is loaded again, since the indices meant other songs.
  async function itemsOf(indices, map = state.map) {
    const wanted = [...new Set(indices)].filter((i) => !named.has(i));
    const version = map.header.version;
    for (let start = 0; start < wanted.length && state.map === map; start += ITEMS_AT_ONCE) {
      try {
        const body = await api("/api/map/items", { method: "POST",
          body: { version, indices: wanted.slice(start, start + ITEMS_AT_ONCE) } });
        if (state.map !== map) break;
        body.items.forEach((item) => {
          named.set(item.index, item);
          known.set(item.item_id, { title: item.title, artist: item.artist, point: pointOf(map, item.index) });
        });
      } catch (err) {
        if (err.status !== 409) throw err;
        if (state.map === map) {
          say(selectionMessage, "The map had changed since it was loaded: it has been loaded again. Try once more.",
            true);
          await load(state.percent);
        }
        return null;
      }
    }
    return state.map === map ? indices.map((i) => named.get(i)) : null;
  }

  // --- drawing ---------------------------------------------------------------------------------------------
  function pointSize() {
    const n = state.map ? state.map.count : 0;
    const base = n > 200000 ? 2 : n > 20000 ? 3 : 6;
    const zoom = state.map ? Math.max(1, (state.map.header.bounds[2] - state.map.header.bounds[0] || 1)
      / (view.x[1] - view.x[0])) : 1;
    return Math.min(12, base * Math.min(3, Math.sqrt(zoom))) * (window.devicePixelRatio || 1);
  }

  function updatePalette() {
    const rows = state.map && state.map.none === 0xffff ? 256 : 1;
    const rgba = new Uint8Array(256 * rows * 4);
    state.visible = 0;
    state.tags.forEach(([tag, count, code]) => {
      const hex = state.colours.get(tag);
      rgba.set([parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16),
        state.hidden.has(tag) ? 0 : 255], code * 4);
      if (!state.hidden.has(tag)) state.visible += count;
    });
    renderer.palette(rgba);
  }
  const isShown = (i) => !state.hidden.has(tagOf(state.map.codes[i]));

  // The layers drawn over the points, in drawing order: what the page shows (and what tests ask for).
  function layers() {
    const out = [{ name: "songs", visible: true, count: state.visible }];
    const ids = state.selection.filter((id) => known.get(id) && known.get(id).point);
    out.push({ name: "selected", visible: true, ids, points: ids.map((id) => known.get(id).point) });
    state.paths.forEach((path, n) => {
      out.push({ name: `path ${n + 1} line`, visible: path.lineOn, ids: path.ids, points: path.points });
      out.push({ name: `path ${n + 1} songs`, visible: path.pointsOn, ids: path.ids, points: path.points,
        labels: path.labels, colour: PALETTE[(n * 3 + 3) % PALETTE.length] });
    });
    if (state.highlight && state.highlightOn) {
      const h = state.highlight;
      out.push({ name: "found", visible: true, ids: [h.item_id], points: [h.point], labels: [`${h.title} — ${h.artist}`] });
    }
    return out;
  }

  // Two layers: the points (WebGL; redrawn only when the view, the map or the hidden tags change) and the overlay
  // (2-D canvas: selection, paths, the star, the lasso, the hover ring; cheap, redrawn for everything).
  let frame = 0;
  let pointsStale = true;
  let settle = 0;
  function render() {
    if (!frame) frame = requestAnimationFrame(draw);
  }
  function redraw() {
    pointsStale = true;
    render();
  }
  // While the view moves, a slow renderer (software WebGL draws about a million points a second) draws only a
  // prefix of the points — the map order is pseudo-random, so a prefix is an even sample — and all of them once
  // the view has been still for 200 ms.
  function moved() {
    state.moving = true;
    clearTimeout(settle);
    settle = setTimeout(() => { state.moving = false; redraw(); }, 200);
    redraw();
  }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    view.width = plot.clientWidth || 1;
    view.height = plot.clientHeight || 1;
    [glCanvas, pixelCanvas, overlay].forEach((canvas) => {
      canvas.width = Math.round(view.width * ratio);
      canvas.height = Math.round(view.height * ratio);
    });
  }

  function draw() {
    frame = 0;
    if (overlay.width !== Math.round(plot.clientWidth * (window.devicePixelRatio || 1))) {
      resize();
      pointsStale = true;
    }
    if (pointsStale) {
      pointsStale = false;
      updatePalette();
      const count = state.map ? state.map.count : 0;
      let limit = count;
      if (state.moving && state.frameMs > 40) limit = Math.max(20000, Math.floor((count * 40) / state.frameMs));
      if (!state.frameMs && count) {  // time one whole frame of this map, once
        const started = performance.now();
        renderer.draw(view, pointSize(), limit);
        renderer.finish();
        state.frameMs = performance.now() - started;
        plot.dataset.frameMs = state.frameMs.toFixed(0);
      } else {
        renderer.draw(view, pointSize(), limit);
      }
      plot.dataset.drawn = String(Math.min(limit, count));
      plot.dataset.points = String(state.map ? state.visible : 0);
    }
    drawOverlay();
  }

  function drawOverlay() {
    const ratio = window.devicePixelRatio || 1;
    ink.setTransform(ratio, 0, 0, ratio, 0, 0);
    ink.clearRect(0, 0, view.width, view.height);
    const at = (p) => view.toScreen(p[0], p[1]);
    layers().slice(1).forEach((layer) => {
      if (!layer.visible) return;
      ink.lineWidth = 2;
      ink.strokeStyle = "#111";
      if (layer.name.endsWith(" line")) {
        ink.beginPath();
        layer.points.forEach((p, i) => { const [x, y] = at(p); if (i) ink.lineTo(x, y); else ink.moveTo(x, y); });
        ink.stroke();
      } else if (layer.name === "selected") {
        layer.points.forEach((p) => { const [x, y] = at(p); ink.beginPath(); ink.arc(x, y, 6, 0, 2 * Math.PI); ink.stroke(); });
      } else if (layer.name === "found") {
        const [x, y] = at(layer.points[0]);
        star(x, y, 11);
      } else {
        ink.fillStyle = layer.colour;
        ink.lineWidth = 1;
        layer.points.forEach((p) => {
          const [x, y] = at(p); ink.beginPath(); ink.arc(x, y, 4.5, 0, 2 * Math.PI); ink.fill(); ink.stroke();
        });
      }
    });
    if (state.drag && (state.drag.kind === "lasso" || state.drag.kind === "box") && state.drag.moved) {
      ink.setLineDash([4, 3]);
      ink.strokeStyle = "#333";
      ink.lineWidth = 1;
      ink.beginPath();
      shape(state.drag).forEach(([x, y], i) => (i ? ink.lineTo(x, y) : ink.moveTo(x, y)));
      ink.closePath();
      ink.stroke();
      ink.setLineDash([]);
    }
    if (state.focused) {  // the keyboard's marker: Enter selects the song nearest to it
      const [x, y] = [view.width / 2, view.height / 2];
      ink.strokeStyle = "#111";
      ink.lineWidth = 1;
      ink.beginPath();
      ink.moveTo(x - 9, y); ink.lineTo(x + 9, y); ink.moveTo(x, y - 9); ink.lineTo(x, y + 9);
      ink.stroke();
    }
    if (state.hover) {
      const [x, y] = state.hover.screen;
      ink.strokeStyle = "#111";
      ink.lineWidth = 1.5;
      ink.beginPath();
      ink.arc(x, y, 5, 0, 2 * Math.PI);
      ink.stroke();
    }
  }

  function star(x, y, r) {
    ink.beginPath();
    for (let k = 0; k < 10; k += 1) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5;
      const rr = k % 2 ? r * 0.45 : r;
      ink.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
    }
    ink.closePath();
    ink.fillStyle = "#ffd43b";
    ink.fill();
    ink.lineWidth = 2;
    ink.strokeStyle = "#111";
    ink.stroke();
  }

  // --- finding points --------------------------------------------------------------------------------------
  // The nearest thing under (px, py) within `radius` pixels: an overlay song ({id}) before a map point ({index}).
  function nearest(px, py, radius = NEAR_PX) {
    let best = null;
    let bestDistance = radius * radius;
    layers().slice(1).forEach((layer) => {
      if (!layer.visible || layer.name.endsWith(" line") || layer.name === "selected") return;
      layer.points.forEach((p, k) => {
        const [x, y] = view.toScreen(p[0], p[1]);
        const d = (x - px) ** 2 + (y - py) ** 2;
        if (d <= bestDistance) {
          bestDistance = d;
          best = { id: layer.ids[k], label: layer.labels && layer.labels[k], screen: [x, y] };
        }
      });
    });
    if (best || !state.map || !state.map.count) return best;
    const [qx0, qy1] = toQuantised(px - radius, py - radius);
    const [qx1, qy0] = toQuantised(px + radius, py + radius);
    state.grid.forBox(qx0, qy0, qx1, qy1, (i) => {
      if (!isShown(i)) return;
      const [x, y] = screenOf(i);
      const d = (x - px) ** 2 + (y - py) ** 2;
      if (d < bestDistance || (d === bestDistance && best && i < best.index)) {
        bestDistance = d;
        best = { index: i, screen: [x, y] };
      }
    });
    return best;
  }

  function toQuantised(px, py) {
    const [x, y] = view.toMap(px, py);
    const [x0, y0, x1, y1] = state.map.header.bounds;
    return [(x - x0) / ((x1 - x0) || 1) * STEPS, (y - y0) / ((y1 - y0) || 1) * STEPS];
  }

  const screenOf = (i) => { const [x, y] = pointOf(state.map, i); return view.toScreen(x, y); };

  // The screen polygon of a lasso or box drag.
  function shape(drag) {
    if (drag.kind === "lasso") return drag.points;
    const [[x0, y0], [x1, y1]] = [drag.points[0], drag.points[drag.points.length - 1]];
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  }

  // Indices of the shown points inside a screen polygon, in map order.
  function inside(polygon) {
    const xs = polygon.map((p) => p[0]);
    const ys = polygon.map((p) => p[1]);
    const [qx0, qy1] = toQuantised(Math.min(...xs), Math.min(...ys));
    const [qx1, qy0] = toQuantised(Math.max(...xs), Math.max(...ys));
    const found = [];
    state.grid.forBox(qx0, qy0, qx1, qy1, (i) => {
      if (!isShown(i)) return;
      const [x, y] = screenOf(i);
      let odd = false;
      for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a, a += 1) {
        const [xa, ya] = polygon[a];
        const [xb, yb] = polygon[b];
        if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) odd = !odd;
      }
      if (odd) found.push(i);
    });
    return found.sort((a, b) => a - b);
  }

  // --- pointer, wheel and keys -----------------------------------------------------------------------------
  const local = (event) => { const box = plot.getBoundingClientRect(); return [event.clientX - box.left, event.clientY - box.top]; };

  plot.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !state.map) return;
    plot.setPointerCapture(event.pointerId);
    state.drag = { kind: state.mode, points: [local(event)], moved: false, last: local(event) };
    hideTooltip();
  });
  plot.addEventListener("pointermove", (event) => {
    const at = local(event);
    const drag = state.drag;
    if (!drag) { hoverAt(at); return; }
    const [x0, y0] = drag.points[0];
    if (!drag.moved && Math.hypot(at[0] - x0, at[1] - y0) < 4) return;
    drag.moved = true;
    if (drag.kind === "pan") {
      view.pan(at[0] - drag.last[0], at[1] - drag.last[1]);
      moved();
    } else if (drag.kind === "box") {
      drag.points = [drag.points[0], at];
    } else {
      const [lx, ly] = drag.points[drag.points.length - 1];
      if (Math.hypot(at[0] - lx, at[1] - ly) >= 2) drag.points.push(at);
    }
    drag.last = at;
    render();
  });
  plot.addEventListener("pointerup", (event) => {
    const drag = state.drag;
    state.drag = null;
    if (!drag) return;
    if (!drag.moved) {
      clickAt(local(event));
    } else if (drag.kind !== "pan") {
      const found = inside(shape(drag));
      if (found.length) addIndices(found);
    }
    render();
  });
  plot.addEventListener("pointercancel", () => { state.drag = null; render(); });
  plot.addEventListener("pointerleave", () => { if (!state.drag) hideTooltip(); });
  plot.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [px, py] = local(event);
    view.zoom(Math.exp(-event.deltaY * 0.002), px, py);
    hideTooltip();
    moved();
  }, { passive: false });
  plot.addEventListener("dblclick", () => { if (state.map) { view.fit(state.map.header.bounds); redraw(); } });

  plot.addEventListener("focus", () => { state.focused = true; render(); });
  plot.addEventListener("blur", () => { state.focused = false; hideTooltip(); render(); });
  plot.addEventListener("keydown", (event) => {
    if (!state.map) return;
    const step = 0.1;
    const keys = {
      ArrowLeft: () => view.pan(view.width * step, 0), ArrowRight: () => view.pan(-view.width * step, 0),
      ArrowUp: () => view.pan(0, view.height * step), ArrowDown: () => view.pan(0, -view.height * step),
      "+": () => view.zoom(1.5), "=": () => view.zoom(1.5), "-": () => view.zoom(1 / 1.5),
      0: () => view.fit(state.map.header.bounds),
      Enter: () => clickAt([view.width / 2, view.height / 2], NEAR_PX * 3),
      Escape: () => hideTooltip(),
    };
    const act = keys[event.key];
    if (!act) return;
    event.preventDefault();
    act();
    if (event.key !== "Enter" && event.key !== "Escape") {
      moved();
      hoverAt([view.width / 2, view.height / 2], NEAR_PX * 3);
    }
    render();
  });

  document.querySelectorAll(".map-mode").forEach((button) => button.addEventListener("click", () => {
    state.mode = button.dataset.mode;
    document.querySelectorAll(".map-mode").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    plot.dataset.mode = state.mode;
  }));
  $("map-zoom-in").addEventListener("click", () => { view.zoom(1.5); redraw(); });
  $("map-zoom-out").addEventListener("click", () => { view.zoom(1 / 1.5); redraw(); });
  $("map-reset").addEventListener("click", () => { if (state.map) { view.fit(state.map.header.bounds); redraw(); } });
  new ResizeObserver(() => { resize(); redraw(); }).observe(plot);

  // --- hover -----------------------------------------------------------------------------------------------
  let hoverAsked = 0;
  async function hoverAt([px, py], radius = NEAR_PX) {
    const map = state.map;
    const hit = nearest(px, py, radius);
    const mine = ++hoverAsked;
    if (!hit) { hideTooltip(); return; }
    state.hover = hit;
    render();
    if (hit.id) { showTooltip(hit.screen, hit.label || describeSong(hit.id), hit.id); return; }
    const tag = tagOf(state.map.codes[hit.index]);
    const item = named.get(hit.index);
    if (item) { showTooltip(hit.screen, `${item.title} — ${item.artist} · ${tag}`, item.item_id); return; }
    showTooltip(hit.screen, `… · ${tag}`);
    try {
      const [found] = (await itemsOf([hit.index], map)) || [];
      if (found && mine === hoverAsked) {
        showTooltip(hit.screen, `${found.title} — ${found.artist} · ${tag}`, found.item_id);
      }
    } catch (err) {
      if (mine === hoverAsked) showTooltip(hit.screen, `Could not name this song: ${err.message}`);
    }
  }

  // the hover card: the song's cover (when the song is known) and its name
  function showTooltip([x, y], text, itemId) {
    const name = element("span", {}, text);
    if (itemId) {
      const cover = element("img", { class: "cover", alt: "", width: "40", height: "40",
        src: `/api/tracks/${encodeURIComponent(itemId)}/cover?size=64` });
      tooltip.replaceChildren(cover, name);
    } else {
      tooltip.replaceChildren(name);
    }
    tooltip.hidden = false;
    tooltip.style.left = `${Math.min(x + 12, view.width - 200)}px`;
    tooltip.style.top = `${Math.max(0, y - 30)}px`;
  }

  function hideTooltip() {
    hoverAsked += 1;
    tooltip.hidden = true;
    if (state.hover) { state.hover = null; render(); }
  }

  // --- selection -------------------------------------------------------------------------------------------
  async function clickAt([px, py], radius = NEAR_PX) {
    const map = state.map;
    const hit = nearest(px, py, radius);
    if (!hit) return;
    if (hit.id) { addToSelection([hit.id]); return; }
    try {
      const items = await itemsOf([hit.index], map);
      if (items) addToSelection([items[0].item_id]);
    } catch (err) { say(selectionMessage, `The song could not be selected: ${err.message}`, true); }
  }

  // Points chosen by a lasso or box (in map order): the first ones that fit are named and added.
  async function addIndices(indices) {
    const map = state.map;
    const room = Math.max(0, settings.max_selection - state.selection.length);
    const asked = indices.slice(0, room + state.selection.length);
    let items;
    try {
      items = await itemsOf(asked, map);
    } catch (err) {
      say(selectionMessage, `The songs could not be selected: ${err.message}`, true);
      return;
    }
    if (items) addToSelection(items.map((item) => item.item_id), {}, indices.length - asked.length);
  }

  function addToSelection(ids, details = {}, alsoRefused = 0) {
    const have = new Set(state.selection);
    let refused = alsoRefused;
    ids.forEach((id) => {
      if (have.has(id)) return;
      if (state.selection.length >= settings.max_selection) { refused += 1; return; }
      state.selection.push(id);
      have.add(id);
      if (details[id]) known.set(id, details[id]);
    });
    renderSelection();
    if (refused) {
      say(selectionMessage, `The selection holds at most ${settings.max_selection} songs: ${refused} not added.`,
        true);
    }
  }

  function describeSong(id) {
    const item = known.get(id);
    return item ? `${item.title} — ${item.artist}` : id;
  }

  function renderSelection() {
    const list = $("selection-list");
    list.replaceChildren(...state.selection.map((id) => {
      const li = element("li", { "data-item-id": id });
      const name = element("span", {}, describeSong(id));
      const remove = element("button", { type: "button", class: "remove", "aria-label": `Remove ${describeSong(id)}` },
        "Remove");
      remove.addEventListener("click", () => {
        state.selection = state.selection.filter((other) => other !== id);
        renderSelection();
      });
      li.append(playButton(id, describeSong(id)), name, remove);
      return li;
    }));
    const n = state.selection.length;
    $("selection-count").textContent = `(${n})`;
    $("map-song-path").disabled = n < settings.path_min || n > settings.path_max;
    $("map-song-path").title = n > settings.path_max ? `Song path takes at most ${settings.path_max} songs` : "";
    document.querySelector(".playlist-box").hidden = n === 0;
    say(selectionMessage, "");
    render();
  }
  $("selection-clear").addEventListener("click", () => { state.selection = []; renderSelection(); });

  const box = document.querySelector(".playlist-box");
  playlistBox(box, () => state.selection, { source: "map" });

  // --- legend ----------------------------------------------------------------------------------------------
  function renderLegend() {
    $("map-legend").replaceChildren(...state.tags.map(([tag, count]) => {
      const li = element("li");
      const button = element("button", { type: "button", "data-tag": tag,
        "aria-pressed": String(!state.hidden.has(tag)) });
      const swatch = element("span", { class: "swatch" });
      swatch.style.background = state.colours.get(tag);
      button.append(swatch, element("span", {}, tag), element("span", { class: "count" }, String(count)));
      button.addEventListener("click", () => {
        if (state.hidden.has(tag)) state.hidden.delete(tag); else state.hidden.add(tag);
        button.setAttribute("aria-pressed", String(!state.hidden.has(tag)));
        redraw();
      });
      li.append(button);
      return li;
    }));
  }
  $("legend-hide-all").addEventListener("click", () => {
    state.tags.forEach(([tag]) => state.hidden.add(tag));
    renderLegend();
    redraw();
  });
  $("legend-show-all").addEventListener("click", () => {
    state.hidden.clear();
    renderLegend();
    redraw();
  });

  // --- search and highlight --------------------------------------------------------------------------------
  const searchInput = $("map-search");
  const picked = picker(searchInput, { onEnter: () => $("map-search-go").click() });  // Enter searches

  async function pointsOf(ids) {
    const out = new Map();
    for (let start = 0; start < ids.length; start += ITEMS_AT_ONCE) {
      const body = await api("/api/map/points", { method: "POST", body: { item_ids: ids.slice(start, start + ITEMS_AT_ONCE) } });
      Object.entries(body.points).forEach(([id, point]) => out.set(id, point));
    }
    return out;
  }

  function centreOn(point) {
    const half = (range) => Math.min(Math.abs(range[1] - range[0]), 3) / 2;
    const [hx, hy] = [half(view.x), half(view.y)];
    view.x = [point[0] - hx, point[0] + hx];
    view.y = [point[1] - hy, point[1] + hy];
    redraw();
  }

  $("map-search-go").addEventListener("click", async () => {
    let id = picked();
    let song = null;
    try {
      if (!id) {
        const text = searchInput.value.trim();
        if (text.length < 2) { say(message, "Type at least two letters of a title or an artist.", true); return; }
        const found = await api(`/api/search_tracks?q=${encodeURIComponent(text)}&limit=1`);
        if (!found.length) { say(message, `No song matches "${text}".`, true); return; }
        song = found[0];
        id = song.item_id;
      }
      const points = await pointsOf([id]);
      const point = points.get(id);
      if (!point) { say(message, "That song is not on the map yet (it has not been analyzed).", true); return; }
      const title = song ? song.title : searchInput.dataset.title || (known.get(id) || {}).title || id;
      const artist = song ? song.author : (known.get(id) || {}).artist || "";
      state.highlight = { item_id: id, point, title, artist };
      state.highlightOn = true;
      const toggle = $("map-highlight-toggle");
      toggle.disabled = false;
      toggle.setAttribute("aria-pressed", "true");
      toggle.textContent = "Hide highlight";
      centreOn(point);
      addToSelection([id], { [id]: { title, artist, point } });
      say(message, `Found "${title}" by ${artist || "an unknown artist"}: marked with a star.`);
    } catch (err) { say(message, `Search failed: ${err.message}`, true); }
  });

  $("map-highlight-toggle").addEventListener("click", (event) => {
    state.highlightOn = !state.highlightOn;
    event.currentTarget.setAttribute("aria-pressed", String(state.highlightOn));
    event.currentTarget.textContent = state.highlightOn ? "Hide highlight" : "Show highlight";
    render();
  });

  // --- song paths ------------------------------------------------------------------------------------------
  function renderPathList() {
    $("path-list").replaceChildren(...state.paths.map((path, n) => {
      const li = document.createElement("li");
      li.dataset.path = String(n);
      const label = document.createElement("span");
      label.textContent = `Path ${n + 1}: ${path.labels[0].split(" — ")[0]} → ${path.labels[path.labels.length - 1].split(" — ")[0]} (${path.ids.length} songs)`;
      li.append(label);
      [["lineOn", "line"], ["pointsOn", "points"]].forEach(([key, what]) => {
        const check = document.createElement("label");
        check.className = "check";
        const input = document.createElement("input");
        input.type = "checkbox";
        input.checked = path[key];
        input.dataset.toggle = what;
        input.addEventListener("change", () => { path[key] = input.checked; render(); });
        check.append(input, ` Show ${what}`);
        li.append(check);
      });
      return li;
    }));
  }

  $("map-song-path").addEventListener("click", async () => {
    const chosen = [...state.selection];
    const button = $("map-song-path");
    button.disabled = true;
    say(selectionMessage, `Finding ${chosen.length - 1} paths…`);
    const added = [];
    let failed = 0;
    for (let i = 0; i + 1 < chosen.length; i += 1) {
      try {
        const params = new URLSearchParams({ start_song_id: chosen[i], end_song_id: chosen[i + 1] });
        const body = await api(`/api/find_path?${params}`);
        const points = await pointsOf(body.path.map((t) => t.item_id));
        const onMap = body.path.filter((t) => points.has(t.item_id));
        state.paths.push({ ids: onMap.map((t) => t.item_id), points: onMap.map((t) => points.get(t.item_id)),
          labels: onMap.map((t) => `${t.title} — ${t.author}`), lineOn: true, pointsOn: true });
        body.path.forEach((t) => {
          known.set(t.item_id, { title: t.title, artist: t.author, point: points.get(t.item_id) });
          added.push(t.item_id);
        });
      } catch (err) {
        failed += 1;
        say(selectionMessage, `A path could not be found: ${err.message}`, true);
      }
    }
    render();
    renderPathList();
    addToSelection(added);
    if (!failed) say(selectionMessage, `${state.paths.length} paths drawn; their songs are in the selection.`);
  });

  // --- refresh and rebuild ---------------------------------------------------------------------------------
  function clearOverlays() {
    state.selection = [];
    state.highlight = null;
    state.paths = [];
    $("map-highlight-toggle").disabled = true;
    renderSelection();
    renderPathList();
  }
  $("map-refresh").addEventListener("click", () => { clearOverlays(); load(state.percent); });
  document.querySelectorAll(".percent").forEach((button) => {
    button.addEventListener("click", () => load(Number(button.dataset.percent)));
  });

  $("map-rebuild").addEventListener("click", async () => {
    const button = $("map-rebuild");
    button.disabled = true;
    try {
      const before = (await api("/api/map/status")).served;
      const started = await api("/api/map/rebuild", { method: "POST" });
      const task = await followTask(started.task_id, (t) => say(message,
        `Rebuilding the map: ${t.progress} % — ${t.status_message || t.status}`), { every: 1500 });
      if (task.status !== "SUCCESS") throw new Error(task.error || task.status);
      // the web process rebuilds its cache when the job announces the new map: wait until it serves it
      for (let i = 0; i < 40; i += 1) {
        const served = (await api("/api/map/status")).served;
        if (served && (!before || served.built_at !== before.built_at)) break;
        await sleep(500);
      }
      await load(state.percent);
    } catch (err) {
      say(message, `The map was not rebuilt: ${err.message}`, true);
    } finally { button.disabled = false; }
  });

  // What the page shows, for tests and benchmarks: the view, where a map point is on the screen, the layers, and
  // how many pixels the points painted.
  window.AudioMuseMap = {
    view: () => ({ x: [...view.x], y: [...view.y] }),
    toScreen(x, y) {
      const box = plot.getBoundingClientRect();
      const [sx, sy] = view.toScreen(x, y);
      return [box.left + sx, box.top + sy];
    },
    layers: () => layers().map((layer) => ({ ...layer })),
    painted: () => renderer.painted(view, pointSize()),
    renderer: () => renderer.kind,
  };

  resize();
  renderSelection();
  load(window.MAP_PREFETCH ? window.MAP_PREFETCH.percent : 25);
})();
