"""Static files: linked by a versioned URL, kept by browsers for a year under it, compressed when accepted."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path

from services.static_assets import AssetStore

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_pages_link_versioned_files_that_are_cached_for_a_year(client):
    page = client.get("/similarity").get_data(as_text=True)
    links = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{12})"', page)
    assert {"/static/css/app.css", "/static/js/common.js"} <= {path for path, _ in links}
    for path, version in links:
        body = (STATIC / path.removeprefix("/static/")).read_bytes()
        assert version == hashlib.sha256(body).hexdigest()[:12], path
        answer = client.get(f"{path}?v={version}", headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200 and answer.data == body
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get("/static/css/app.css?v=000000000000")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"


def test_text_files_are_sent_compressed_when_the_browser_accepts_it(client):
    plotly = (STATIC / "vendor/plotly/plotly.min.js").read_bytes()
    packed = client.get("/static/vendor/plotly/plotly.min.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Content-Type"].startswith("text/javascript") or \
        packed.headers["Content-Type"].startswith("application/javascript")
    assert len(packed.data) < len(plotly) / 2 and gzip.decompress(packed.data) == plotly
    assert packed.headers["Vary"] == "Accept-Encoding"
    plain = client.get("/static/vendor/plotly/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.data == plotly


def test_a_known_version_answers_not_modified_and_files_outside_static_are_not_served(client):
    first = client.get("/static/js/common.js")
    again = client.get("/static/js/common.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/js/nothing.js", "/static/js",
                 "/static/js/./common.js", "/static/js//common.js", "/static/js/../js/common.js"):
        assert client.get(path).status_code == 404, path  # one spelling per file: no cache entry per URL
    assert client.get("/static/a%00b.js").status_code == 400  # a NUL byte is refused before any route
    refused = client.get("/static/vendor/plotly/plotly.min.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    packed = client.get("/static/vendor/plotly/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["ETag"] != refused.headers["ETag"]


def test_a_changed_file_gets_a_new_version(tmp_path):
    (tmp_path / "a.css").write_text("body { color: red; }\n" * 100)
    store = AssetStore(tmp_path)
    before = store.version("a.css")
    assert store.get("a.css").gzipped is not None  # type: ignore[union-attr]
    (tmp_path / "a.css").write_text("body { color: blue; }\n" * 100)
    os.utime(tmp_path / "a.css", ns=(1, 10**18))
    assert store.version("a.css") not in ("", before)
    assert store.version("missing.css") == "" and store.get("../a.css") is None
