"""The diffable export, GET /api/sync: `fields=index` pages {id, fp} for a client to diff against what it holds;
`ids=a,b,...` returns those tracks' full rows; neither pages the full rows. Behind the login or bearer token like
every API route."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from audio.musicnn import MODEL_NAME
from db.app_settings import effective_config
from routes.common import ITEM_ID_MAX
from routes.context import runtime
from routes.errors import bad_parameter
from routes.params import MAX_INT, bool_param, int_param, str_param
from services.sync import Page, index_page, payload_by_id, payload_page

bp = Blueprint("sync_api", __name__)

INDEX_LIMIT = 1000  # rows of a `fields=index` page, at most
PAYLOAD_LIMIT = 500  # full rows of a page, at most (an embedding is about 1 KB of base64)
MAX_IDS = 500


def _page(cap: int) -> Page:
    """`page` (1-based) and `limit` (capped at `cap`, as the reference caps it); `page` bounded so that its offset
    stays a PostgreSQL integer."""
    limit = min(int_param("limit", cap, minimum=1), cap)
    return Page(page=int_param("page", 1, minimum=1, maximum=MAX_INT // limit), limit=limit)


def _ids() -> list[str]:
    """The ids of `ids` (comma-separated, or the parameter repeated), each once, in the order given."""
    given = [part.strip() for value in request.args.getlist("ids") for part in value.split(",")]
    ids = list(dict.fromkeys(i for i in given if i))
    if len(ids) > MAX_IDS:
        raise bad_parameter("ids", f"{len(ids)} ids", f"at most {MAX_IDS}")
    if any(len(i) > ITEM_ID_MAX or "\x00" in i for i in ids):
        raise bad_parameter("ids", "an id", f"ids of at most {ITEM_ID_MAX} characters")
    return ids


@bp.get("/api/sync")
def sync() -> Response:
    """`server` is accepted and ignored: AudioMuse serves one media server."""
    rt = runtime()
    fields = str_param("fields", max_length=20)
    if fields not in ("", "index"):
        raise bad_parameter("fields", fields, "'index', or nothing for the full rows")
    embeddings = bool_param("include_embeddings", True)
    ids = _ids()
    if ids:
        body = payload_by_id(rt.db, ids, model=MODEL_NAME, map_name=rt.config.INDEX_NAME, embeddings=embeddings)
    elif fields == "index":
        body = index_page(rt.db, _page(INDEX_LIMIT), model=MODEL_NAME)
    else:
        body = payload_page(rt.db, _page(PAYLOAD_LIMIT), model=MODEL_NAME, map_name=rt.config.INDEX_NAME,
                            embeddings=embeddings)
    return jsonify({**body, "provider_type": effective_config(rt.config, rt.db).MEDIASERVER_TYPE})
