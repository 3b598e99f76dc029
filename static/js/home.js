// Home: the health warnings (asked for after the page is drawn: they ask the media server), the map preview (a
// quarter of the library from the binary map, drawn into a canvas), relative times, and the quick actions.
(() => {
  "use strict";
  const { api, picker, say } = window.AudioMuse;
  const $ = (id) => document.getElementById(id);
  const COLOURS = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad", "#f08c00", "#5c940d",
    "#d6336c", "#0b7285"];

  // "3 hours ago", "in 20 minutes": the server wrote the absolute time; the browser knows the reader's clock.
  function relative(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
    }
    return format.format(Math.round(seconds), "second");
  }
  document.querySelectorAll("time[data-relative]").forEach((node) => {
    if (!Number.isNaN(Date.parse(node.dateTime))) {
      node.title = new Date(node.dateTime).toLocaleString();
      node.textContent = relative(node.dateTime);
    }
  });

  // warnings that clear on their own (a worker started, the index loaded, a server back) are asked for again
  // soon; the others wait for the person to act
  const PASSING = new Set(["workers", "index_loading", "redis", "media_server"]);
  let shownKeys = "";
  async function showWarnings() {
    const box = $("home-warnings");
    let again = 60000;
    try {
      const { warnings } = await api("/api/home/warnings");
      if (warnings.some((w) => PASSING.has(w.key))) again = 5000;
      const keys = warnings.map((w) => w.key).join(",");
      if (keys === shownKeys) return;  // unchanged: not announced again
      shownKeys = keys;
      box.replaceChildren(...warnings.map((w) => {
        const card = $("warning-template").content.firstElementChild.cloneNode(true);
        card.dataset.key = w.key;
        card.querySelector(".warning-title").textContent = w.title;
        card.querySelector(".warning-detail").textContent = w.detail;
        const fix = card.querySelector(".warning-fix");
        // `a command` in the fix is shown as code
        fix.append(...w.fix.split("`").map((part, i) => (i % 2 ? Object.assign(document.createElement("code"),
          { textContent: part }) : document.createTextNode(part))));
        if (w.link) {
          const link = document.createElement("a");
          link.href = w.link;
          link.textContent = "Go there";
          fix.append(" ", link);
        }
        return card;
      }));
    } catch (err) {
      const card = $("warning-template").content.firstElementChild.cloneNode(true);
      card.querySelector(".warning-title").textContent = "The server's health could not be checked";
      card.querySelector(".warning-detail").textContent = err.message;
      card.querySelector(".warning-fix").textContent = "Reload the page in a moment.";
      box.replaceChildren(card);
    } finally {
      box.setAttribute("aria-busy", "false");
      setTimeout(showWarnings, again);
    }
  }

  async function drawMapPreview() {
    const canvas = $("map-preview");
    const status = $("map-preview-status");
    try {
      let response = await fetch("/api/map?percent=25&format=binary", { credentials: "same-origin" });
      for (let tries = 0; response.status === 503 && tries < 60; tries += 1) {  // being built: it says when to ask
        const body = await response.json().catch(() => ({}));
        say(status, body.error || "The map is being prepared…");
        await new Promise((resolve) => { setTimeout(resolve, 1000 * Number(response.headers.get("Retry-After") || 2)); });
        response = await fetch("/api/map?percent=25&format=binary", { credentials: "same-origin" });
      }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.error || `${response.status} ${response.statusText}`);
      }
      const map = window.MapPoints.decode(await response.arrayBuffer());
      if (!map.count) {
        say(status, "The map appears once tracks are analysed.");
        return;
      }
      const renderer = window.MapPoints.createPixelRenderer(canvas);
      renderer.background = window.MapPoints.rgbOf(getComputedStyle(canvas).getPropertyValue("--card"));
      const view = new window.MapPoints.View();
      view.fit(map.header.bounds);
      renderer.load(map);
      const rows = map.none === 0xffff ? 256 : 1;
      const rgba = new Uint8Array(256 * rows * 4);
      map.header.tags.forEach((tag, code) => {
        const hex = COLOURS[code % COLOURS.length];
        rgba.set([parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16), 255],
          code * 4);
      });
      renderer.palette(rgba);
      renderer.draw(view, map.count > 100000 ? 1 : map.count > 20000 ? 2 : map.count > 1000 ? 3 : 6);
      canvas.dataset.points = String(map.count);
      say(status, `${map.count.toLocaleString()} of ${Number(map.header.total).toLocaleString()} songs shown; ` +
        "open the map to explore them all.");
    } catch (err) {
      say(status, `The map preview could not be drawn: ${err.message}`, true);
    }
  }

  const similarInput = $("similar-seed");
  const seed = picker(similarInput);
  $("similar-to").addEventListener("submit", (event) => {
    const id = seed();
    if (!id) {
      event.preventDefault();
      say($("similar-to-message"), "Pick a song from the list first (type two letters of its title or artist).", true);
      similarInput.focus();
      return;
    }
    $("similar-item").value = id;
    $("similar-title").value = similarInput.value;
  });

  showWarnings();
  drawMapPreview();
})();
