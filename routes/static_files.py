"""/static/<file>: the page's scripts, styles and images, compressed when the browser accepts it and kept by the
browser for a year when asked for by their versioned URL (`asset()` in templates: `/static/js/map.js?v=<hash>`).
Open without login, as before."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, abort, request
from werkzeug.wrappers import Response

from services.static_assets import AssetStore

bp = Blueprint("static_files", __name__)
STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"
YEAR_SECONDS = 365 * 24 * 3600


def _store() -> AssetStore:
    from flask import current_app

    store: AssetStore = current_app.extensions["audiomuse_assets"]
    return store


@bp.get("/static/<path:filename>")
def static_file(filename: str) -> Response:
    asset = _store().get(filename)
    if asset is None:
        abort(404)
    versioned = request.args.get("v") == asset.version
    # a stale version in the URL (a page cached across an upgrade) still gets the file, but only briefly cached
    cache = f"public, max-age={YEAR_SECONDS}, immutable" if versioned else "no-cache"
    packed = asset.gzipped is not None and request.accept_encodings["gzip"] > 0  # "gzip;q=0" refuses it
    etag = asset.etag + ("-gz" if packed else "")  # the two bodies differ, so their tags do
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    elif packed:
        response = Response(asset.gzipped, mimetype=asset.mimetype)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(asset.body, mimetype=asset.mimetype)
    response.headers["Cache-Control"] = cache
    response.headers["Vary"] = "Accept-Encoding"
    response.set_etag(etag)
    return response


def install_static_files(app: Flask) -> None:
    """Serve static/ through this blueprint and give templates `asset(name)`, the file's versioned URL."""
    store = AssetStore(STATIC_ROOT)
    app.extensions["audiomuse_assets"] = store
    app.register_blueprint(bp)

    @app.template_global()
    def asset(name: str) -> str:
        return f"/static/{name}?v={store.version(name)}"
