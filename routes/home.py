"""The home page's data: the library at a glance (/api/home) and what needs attention (/api/home/warnings; it asks
the media server, so the page fetches it after it is drawn)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from routes.context import runtime
from services.home import glance, warnings

bp = Blueprint("home", __name__)


@bp.get("/api/home")
def home() -> Response:
    return jsonify(glance(runtime().db))


@bp.get("/api/home/warnings")
def home_warnings() -> Response:
    rt = runtime()
    found = warnings(config=rt.config, db=rt.db, redis=rt.redis, index_loaded=rt.index.current is not None,
                     index_error=bool(rt.index.last_error))
    return jsonify({"warnings": [w.as_dict() for w in found]})
