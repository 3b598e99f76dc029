"""The playlist matching API: suggestions for new songs (accept adds the song to the playlist on the media server,
reject is remembered), songs that would continue a playlist, the user's playlists, and the matching job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db import playlist_matching as match_store
from db import task_status as task_store
from discovery.playlist_matching import continue_playlist as playlist_continuation
from mediaserver import MediaServerError
from routes.common import exclusions_json, index_queries, queries_exclusions, request_exclusions
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import int_param, json_body, raw_param, str_param
from routes.task_start import start_response
from tasks.catalog import PLAYLIST_MATCHING

bp = Blueprint("playlist_match_api", __name__)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@bp.get("/api/playlists/suggestions")
def suggestions() -> Response:
    """Open suggestions (or `status=accepted|rejected|all`) for songs analyzed since `since` (ISO 8601)."""
    rt = runtime()
    since_text = str_param("since", max_length=40)
    since = None
    if since_text:
        try:
            since = datetime.fromisoformat(since_text)
        except ValueError:
            raise bad_parameter("since", since_text, "an ISO 8601 time, e.g. 2026-12-01T00:00:00+00:00") from None
    status = str_param("status", "open", max_length=10) or "open"
    if status not in ("open", "accepted", "rejected", "all"):
        raise bad_parameter("status", status, "open, accepted, rejected or all")
    exclusions = request_exclusions(rt)
    rows = match_store.list_suggestions(rt.db, since=since, status=None if status == "all" else status,
                                        limit=int_param("limit", 500, minimum=1, maximum=5000), exclusions=exclusions)
    return jsonify({"suggestions": [dict(r, created_at=_iso(r["created_at"]), decided_at=_iso(r["decided_at"]))
                                    for r in rows],
                    "last_run": task_store.last_main_task_of_type(rt.db, PLAYLIST_MATCHING.task_type),
                    **exclusions_json(exclusions)})


def _pair(body: dict[str, Any]) -> tuple[str, str]:
    item_id, playlist_id = body.get("item_id"), body.get("playlist_id")
    if not isinstance(item_id, str) or not item_id:
        raise ApiError(400, "missing 'item_id'", parameter="item_id")
    if not isinstance(playlist_id, str) or not playlist_id:
        raise ApiError(400, "missing 'playlist_id'", parameter="playlist_id")
    return item_id, playlist_id


def _playlist(rt: Runtime, playlist_id: str) -> dict[str, Any]:
    row = match_store.get_user_playlist(rt.db, playlist_id)
    if row is None:
        raise ApiError(404, f"no playlist {playlist_id!r} (run the matching to read your playlists)",
                       parameter="playlist_id")
    return row


@bp.post("/api/playlists/suggestions/accept")
def accept() -> Response:
    """Add the song (or `item_ids`) to the playlist on the media server and record the acceptance; 502 when the
    server refuses (nothing is recorded then)."""
    rt = runtime()
    body = json_body()
    item_id, playlist_id = _pair(body)
    playlist = _playlist(rt, playlist_id)
    if not match_store.is_analyzed(rt.db, item_id):
        raise ApiError(404, f"track '{item_id}' is not analyzed here", parameter="item_id")
    if item_id in playlist["item_ids"]:
        match_store.decide(rt.db, item_id, playlist_id, "accepted")
        return jsonify({"added": False, "message": "already in the playlist"})
    try:
        rt.media_server().add_to_playlist(playlist_id, [item_id])
    except MediaServerError as exc:
        raise ApiError(502, f"the media server did not add the song: {exc}") from None
    if not match_store.decide(rt.db, item_id, playlist_id, "accepted"):
        raise ApiError(404, f"track '{item_id}' is not analyzed here", parameter="item_id")
    match_store.save_user_playlist(rt.db, playlist_id=playlist_id, name=playlist["name"],
                                   item_ids=[*playlist["item_ids"], item_id], content_hash=playlist["content_hash"],
                                   generated=playlist["generated"])  # the next matching run re-profiles it
    return jsonify({"added": True, "playlist": playlist["name"]})


@bp.post("/api/playlists/suggestions/reject")
def reject() -> Response:
    """Remember that the song does not belong in the playlist: it is never suggested there again."""
    rt = runtime()
    item_id, playlist_id = _pair(json_body())
    _playlist(rt, playlist_id)
    if not match_store.decide(rt.db, item_id, playlist_id, "rejected"):
        raise ApiError(404, f"track '{item_id}' is not analyzed here", parameter="item_id")
    return jsonify({"rejected": True})


@bp.get("/api/playlists/mine")
def mine() -> Response:
    """The playlists read from the media server (AudioMuse's own are marked `generated`)."""
    rows = match_store.user_playlists(runtime().db, include_generated=True)
    return jsonify({"playlists": [{"playlist_id": r["playlist_id"], "name": r["name"], "songs": len(r["item_ids"]),
                                   "generated": r["generated"], "fetched_at": _iso(r["fetched_at"])} for r in rows]})


@bp.get("/api/playlists/<path:playlist_id>/continue")
def continue_playlist(playlist_id: str) -> Response:
    """`n` songs that fit the playlist and are not in it, best first, with the reasons (see
    discovery.playlist_matching.continue_playlist)."""
    rt = runtime()
    playlist = _playlist(rt, playlist_id)
    n = int_param("n", 20, minimum=1, maximum=200)
    queries = index_queries(rt)
    continued = playlist_continuation(playlist["item_ids"], n=n, lookup=queries.lookup,
                                      neighbours=queries.neighbours,
                                      other_playlists=[p["item_ids"] for p in match_store.user_playlists(rt.db)])
    if continued is None:
        raise ApiError(409, "none of the playlist's songs is analyzed yet", parameter="playlist_id")
    results, cooccurrence = continued
    return jsonify({"playlist_id": playlist_id, "name": playlist["name"], "cooccurrence": cooccurrence,
                    "results": [{"item_id": c.track.item_id, "title": c.track.title, "artist": c.track.artist,
                                 "album": c.track.album, "score": round(c.score, 4), "reasons": c.reasons}
                                for c in results], **queries_exclusions(queries)})


@bp.post("/api/playlists/<path:playlist_id>/add")
def add_selected(playlist_id: str) -> Response:
    """`{item_ids}` → appended to the playlist on the media server (the page's "add selected")."""
    rt = runtime()
    playlist = _playlist(rt, playlist_id)
    ids = raw_param("item_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids) or len(ids) > 500:
        raise ApiError(400, "'item_ids' must be a list of 1-500 item ids", parameter="item_ids")
    new = [i for i in dict.fromkeys(ids) if i not in playlist["item_ids"]]
    try:
        if new:
            rt.media_server().add_to_playlist(playlist_id, new)
    except MediaServerError as exc:
        raise ApiError(502, f"the media server did not add the songs: {exc}") from None
    match_store.save_user_playlist(rt.db, playlist_id=playlist_id, name=playlist["name"],
                                   item_ids=[*playlist["item_ids"], *new], content_hash=playlist["content_hash"],
                                   generated=playlist["generated"])
    match_store.drop_member_suggestions(rt.db)
    return jsonify({"added": len(new), "playlist": playlist["name"]})


@bp.post("/api/playlists/match")
def start_matching() -> tuple[Response, int]:
    """Start the matching job: `{full: true}` scores every song (a backfill), else those analyzed `since`."""
    return start_response(PLAYLIST_MATCHING, json_body())
