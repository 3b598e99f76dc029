"""What several blueprints share (no blueprint imports another): the index's lookups for a request, a track's JSON,
discovery errors as 400s, a playlist request and its publication, the clustering settings the page and the API
start from."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from flask import Response, request

from clustering.request import ClusteringRequest, defaults_from, preset
from config import EXCLUSION_SETTINGS
from db import tracks as track_store
from db.app_settings import effective_config
from discovery.exclusions import Exclusions, MaskResult
from discovery.types import DiscoveryError, Lookup, TrackInfo
from mediaserver import Capability, MediaServerError, UserCredentials, adapter_class
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import exclusion_params, has_control_characters, json_body
from services.playlists import NothingWritable, Published, UnknownTrack, publish_playlist
from voyager_manager import IndexQueries

ITEM_ID_MAX = 4096  # MPD's ids are file paths
MAX_NAME_BYTES = 200  # UTF-8 bytes of a playlist name (+ "_instant" + ".m3u8" stays under 255)


def saved_exclusions(rt: Runtime) -> Exclusions:
    """The blocklists and scope of the settings (the environment, overridden by what the Settings page saved, as
    the runtime last read it)."""
    values = {name: getattr(rt.config, name) for name in EXCLUSION_SETTINGS}
    values.update(rt.saved_exclusions)
    return Exclusions.from_settings(SimpleNamespace(**values))


def request_exclusions(rt: Runtime) -> Exclusions:
    """What this request may not suggest: the saved blocklists and scope merged with the request's own
    (exclude_artists, exclude_albums, exclude_genres, exclude_folders, libraries, folders, max_duration)."""
    saved = saved_exclusions(rt)
    return discovery_errors(lambda: saved.merged(exclusion_params()))


def index_queries(rt: Runtime, *, exclusions: Exclusions | None = None, apply_exclusions: bool = True
                  ) -> IndexQueries:
    """The index's lookups for this request, their neighbours limited to what the request's exclusions allow
    (`request_exclusions`, or `exclusions` when given; none with `apply_exclusions` false); 503 while no index is
    loaded."""
    if apply_exclusions and exclusions is None:
        exclusions = request_exclusions(rt)
    queries = rt.index.queries(query_ef=rt.config.VOYAGER_QUERY_EF,
                               exclusions=exclusions if apply_exclusions else None)
    if queries is None:
        raise ApiError(503, "the similarity index is not built yet: run an analysis first")
    return queries


def exclusions_json(exclusions: Exclusions | None, mask: MaskResult | None = None) -> dict[str, Any]:
    """`{"exclusions": {...the lists, excluded_tracks, warnings}}` for an answer that applied active exclusions; {}
    otherwise (answers without exclusions keep their shape)."""
    if exclusions is None or not exclusions.active:
        return {}
    body = exclusions.describe()
    if mask is not None:
        body["excluded_tracks"] = mask.excluded
        body["warnings"] = list(mask.warnings)
    return {"exclusions": body}


def queries_exclusions(queries: IndexQueries) -> dict[str, Any]:
    """exclusions_json of what an IndexQueries applied."""
    return exclusions_json(queries.exclusions, queries.mask)


def with_exclusion_headers(response: Response, body: dict[str, Any]) -> Response:
    """A bare-array answer (whose shape clients depend on) says what it excluded in headers instead:
    X-AudioMuse-Excluded (tracks left out) and X-AudioMuse-Exclusions (the `exclusions` object, ASCII JSON)."""
    found = body.get("exclusions")
    if found:
        response.headers["X-AudioMuse-Excluded"] = str(found.get("excluded_tracks", ""))
        response.headers["X-AudioMuse-Exclusions"] = json.dumps(found, ensure_ascii=True, separators=(",", ":"))
    return response


def track_or_404(lookup: Lookup, item_id: str, parameter: str) -> TrackInfo:
    if not item_id:
        raise ApiError(400, f"missing '{parameter}'", parameter=parameter)
    found = lookup([item_id]).get(item_id)
    if found is None:
        raise ApiError(404, f"track '{item_id}' is not in the analyzed library", parameter=parameter)
    return found


def track_json(track: TrackInfo, **extra: Any) -> dict[str, Any]:
    body = {"item_id": track.item_id, "title": track.title, "author": track.artist, "album": track.album,
            "duration_seconds": track.duration_seconds, "tempo_bpm": track.tempo_bpm, "camelot": track.camelot,
            "energy": track.energy, "format": track.file_format}
    if track.copies > 1:
        body.update(copies=track.copies, copy_note=track.copy_note)
    body.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in extra.items()})
    return body


def discovery_errors(call: Any) -> Any:
    try:
        return call()
    except DiscoveryError as exc:
        raise ApiError(400, str(exc), parameter=exc.parameter) from None


def user_credentials() -> UserCredentials | None:
    """Per-user credentials from the request body only: in a query string they would end up in access logs."""
    body = json_body() if request.is_json else request.form
    values = {k: str(body.get(k) or "").strip() for k in ("user", "jellyfin_user_identifier", "navidrome_user",
                                                          "secret", "jellyfin_token", "navidrome_password")}
    user = values["user"] or values["jellyfin_user_identifier"] or values["navidrome_user"]
    secret = values["secret"] or values["jellyfin_token"] or values["navidrome_password"]
    return UserCredentials(user=user, secret=secret) if user and secret else None


# Where the reference's clients name whose play history to read in a query string (the Jellyfin plugin's scheduled
# fingerprint task: one call per Jellyfin user).
QUERY_USER_NAMES = ("user", "jellyfin_user_identifier", "navidrome_user")


def history_user(rt: Runtime) -> UserCredentials | None:
    """Whose play history a request reads: the body's credentials (user_credentials); else the user a query string
    names, read with the configured credentials (a secret the query string carries, `jellyfin_token` or
    `navidrome_password`, is never used: query strings end up in access logs); else None, the configured account.
    A user other than the configured one is readable so only where the configured secret is an API key that reads
    any user (Jellyfin, Emby); elsewhere that is a 400 asking for the user's own credentials in the body."""
    given = user_credentials()
    if given is not None:
        return given
    parameter, name = next(((k, v.strip()) for k in QUERY_USER_NAMES if (v := request.args.get(k, "")).strip()),
                           ("", ""))
    if not name:
        return None
    if len(name) > 200 or has_control_characters(name):
        raise bad_parameter(parameter, name[:40], "a user name of at most 200 characters")
    cfg = effective_config(rt.config, rt.db)
    adapter = adapter_class(cfg.MEDIASERVER_TYPE)
    settings = {f.field: f.setting for f in adapter.settings}
    if "user" not in settings or "secret" not in settings:
        return None  # a server without user accounts keeps one history
    if name.casefold() == str(getattr(cfg, settings["user"]) or "").strip().casefold():
        return None
    if Capability.KEY_READS_USERS in adapter.capabilities:
        return UserCredentials(user=name, secret=str(getattr(cfg, settings["secret"]) or ""))
    raise ApiError(400, f"{adapter.display_name} shows '{name}''s play history only with that user's password: send "
                        "'user' and 'secret' in a JSON body (POST)", parameter=parameter)


def playlist_request(ids_field: str = "track_ids") -> tuple[str, list[str]]:
    """The playlist name and item ids of a request (400 naming the field that is wrong)."""
    body = json_body()
    name = str(body.get("playlist_name") or "").strip()
    if not name:
        raise ApiError(400, "missing 'playlist_name'", parameter="playlist_name")
    if has_control_characters(name):
        raise bad_parameter("playlist_name", name[:40], "a name without line breaks or control characters")
    if len(name) > 200 or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        # the local folder writes the name as a file name: at most 255 bytes on common file systems
        raise bad_parameter("playlist_name", name[:40] + "…", f"at most 200 characters and {MAX_NAME_BYTES} bytes "
                                                              "in UTF-8")
    ids = body.get(ids_field)
    if not isinstance(ids, list) or not ids or not all(
            isinstance(i, str) and i and len(i) <= ITEM_ID_MAX and "\x00" not in i for i in ids):
        raise ApiError(400, f"'{ids_field}' must be a non-empty list of item ids", parameter=ids_field)
    if len(ids) > 5000:
        raise bad_parameter(ids_field, f"{len(ids)} ids", "at most 5000")
    return name, ids


def publish(rt: Runtime, name: str, ids: list[str], *, source: str, ids_field: str = "track_ids") -> Published:
    """Publish the playlist as the user whose credentials the request passes, if any. 404 naming `ids_field` for an
    unknown track, 422 with `left_out` when no song can be in a playlist of the server, 502 when the server
    fails."""
    try:
        return publish_playlist(rt.db, rt.media_server(user=user_credentials()), name, ids, source=source)
    except UnknownTrack as exc:
        raise ApiError(404, str(exc), parameter=ids_field) from None
    except NothingWritable as exc:
        raise ApiError(422, str(exc), parameter=ids_field, left_out=[s.as_dict() for s in exc.left_out]) from None
    except MediaServerError as exc:
        raise ApiError(502, f"the media server did not create the playlist: {exc}") from None


def left_out_note(published: Published) -> str:
    """" (N songs left out: why)" for a playlist message, or nothing."""
    if not published.left_out:
        return ""
    count = len(published.left_out)
    return f" ({count} song{'s' if count != 1 else ''} left out: {published.left_out[0].reason})"


def clustering_defaults() -> ClusteringRequest:
    rt = runtime()
    return defaults_from(effective_config(rt.config, rt.db))


def preset_request() -> tuple[ClusteringRequest, int]:
    size, artists = track_store.library_counts(runtime().db)
    return preset(size, artists, clustering_defaults()), size
