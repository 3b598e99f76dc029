// The versions page: recordings held by several files, a page of them at a time, each file with its format, size
// and length, and which copy the lists show and why.
(() => {
  "use strict";
  const { api, element, cell, say } = window.AudioMuse;
  const summary = document.getElementById("versions-summary");
  const message = document.getElementById("versions-message");
  const table = document.getElementById("versions-table");
  const body = table.querySelector("tbody");
  const more = document.getElementById("versions-more");
  const PAGE = 50;
  let offset = 0;

  const size = (bytes) => (bytes == null ? "size unknown" : `${(bytes / 1048576).toFixed(1)} MB`);
  const length = (s) => (s == null ? "–" : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`);

  function fileList(files) {
    const list = element("ul", { class: "version-files" });
    for (const f of files) {
      const item = element("li", { "data-item-id": f.item_id, class: f.kept ? "kept" : "" });
      item.append(element("strong", {}, f.format || "?"),
        ` ${length(f.duration_seconds)}, ${size(f.size_bytes)} — ${f.album || "no album"}`,
        element("div", { class: "muted path" }, f.file_path || f.item_id));
      list.append(item);
    }
    return list;
  }

  async function load() {
    more.disabled = true;
    try {
      const page = await api(`/api/versions?${new URLSearchParams({ limit: PAGE, offset })}`);
      for (const r of page.recordings) {
        const tr = element("tr", { "data-recording-id": r.recording_id });
        const kept = r.files.find((f) => f.kept) || r.files[0];
        tr.append(cell(`${r.title} — ${r.artist}`), cell(fileList(r.files)),
          cell(`${kept.format || "?"}: ${r.kept_because}`));
        body.append(tr);
      }
      offset += page.recordings.length;
      table.hidden = offset === 0;
      summary.textContent = page.total === 0
        ? "Every song is held by one file: nothing to tidy."
        : `${page.total} ${page.total === 1 ? "recording is" : "recordings are"} held by more than one file; `
          + `showing ${offset}.`;
      more.hidden = offset >= page.total;
    } catch (err) {
      say(message, `Could not list the versions: ${err.message}`, true);
      summary.textContent = "";
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", load);
  load();
})();
