"""The smart playlists' refresh job: each playlist's rule run again, its `<name>_smart` playlist replaced on the media
server when its tracks changed (new matches added, tracks that no longer match or were cleaned removed), and the
outcome recorded. Started after every analysis and cleaning run, and from the page."""

from __future__ import annotations

import logging
from typing import Any

from audio.musicnn import MODEL_NAME
from db import smart_playlists as smart_store
from db.app_settings import effective_config
from db.playlists import save_playlist
from discovery.exclusions import Exclusions
from discovery.smart_rules import RuleError, parse_rule
from mediaserver import MediaServer, MediaServerError
from services.playlists import writable_ids
from tasks.catalog import SMART_PLAYLISTS
from tasks.progress import TaskContext, task

log = logging.getLogger(__name__)


def refresh_one(ctx: TaskContext, server: MediaServer, row: dict[str, Any],
                exclusions: Exclusions | None = None) -> dict[str, Any]:
    """Refresh one smart playlist, without what `exclusions` (the saved blocklists and scope) leave out; what
    changed (or the error, recorded on the playlist)."""
    name = row["name"] + smart_store.SUFFIX
    try:
        matches = smart_store.matching(ctx.db, parse_rule(row["rule"]), order_by=row["order_by"], seed=row["seed"],
                                       limit=row["size_cap"], model=MODEL_NAME, exclusions=exclusions)
    except RuleError as exc:
        smart_store.record_refresh(ctx.db, row["smart_playlist_id"], matches=None, count=None, added=None,
                                   removed=None, error=f"the rule no longer parses: {exc}", mediaserver_playlist=None)
        return {"name": name, "error": str(exc)}
    # songs whose path a playlist of file paths cannot hold are left out, and counted apart
    ids, left_out = writable_ids(ctx.db, server, matches.item_ids)
    for song in left_out:
        log.info("smart playlist %s: left out %s – %s: %s", name, song.artist, song.title, song.reason)
    current = smart_store.published(ctx.db, row["smart_playlist_id"])
    added = len(set(ids) - set(current))
    removed = len(set(current) - set(ids))
    playlist_id = row["mediaserver_playlist"]
    changed = ids != current or (playlist_id is None and bool(ids))
    try:
        if changed and ids:
            playlist_id = server.create_playlist(name, ids)
        elif changed and playlist_id:
            try:
                server.delete_playlist(playlist_id)  # nothing matches any more: no empty playlist left behind
            except MediaServerError as exc:
                if "not found" not in str(exc).lower() and "404" not in str(exc):
                    raise
            playlist_id = None  # deleted, or deleted on the server already
    except MediaServerError as exc:
        smart_store.record_refresh(ctx.db, row["smart_playlist_id"], matches=matches.count, count=None, added=None,
                                   removed=None, error=f"the media server refused the playlist: {exc}",
                                   mediaserver_playlist=None)
        return {"name": name, "error": str(exc)}
    if changed:
        save_playlist(ctx.db, name=name, source=smart_store.SOURCE, item_ids=ids,
                      mediaserver_playlist=playlist_id)
    smart_store.record_refresh(ctx.db, row["smart_playlist_id"], matches=matches.count,
                               count=len(ids), added=added, removed=removed, error=None,
                               mediaserver_playlist=playlist_id, published_ids=ids,
                               clear_playlist=playlist_id is None)
    return {"name": name, "matches": matches.count, "tracks": len(ids), "added": added,
            "removed": removed, "changed": bool(changed), "left_out": [s.as_dict() for s in left_out]}


def start_after(ctx: TaskContext, reason: str) -> str | None:
    """Start the refresh after a run that changed the library (analysis, cleaning); None when there is no smart
    playlist, or a refresh is running already (it reads the library as it is when it gets there)."""
    if not smart_store.list_smart_playlists(ctx.db):
        return None
    return ctx.start_follow_up(SMART_PLAYLISTS, reason=reason, what="the smart playlists' refresh")


@task(SMART_PLAYLISTS.task_type)
def run_smart_playlists_task(ctx: TaskContext, smart_playlist_id: int | None = None, reason: str = ""
                             ) -> dict[str, Any]:
    rows = smart_store.list_smart_playlists(ctx.db) if smart_playlist_id is None else \
        [r for r in [smart_store.get_smart_playlist(ctx.db, smart_playlist_id)] if r is not None]
    ctx.report(f"Refreshing {len(rows)} smart playlists", phase="playlists", current=0, total=len(rows))
    server = ctx.media_server()
    exclusions = Exclusions.from_settings(effective_config(ctx.config, ctx.db))
    outcomes = []
    for number, row in enumerate(rows, start=1):
        ctx.check_cancelled()
        outcome = refresh_one(ctx, server, row, exclusions)
        outcomes.append(outcome)
        line = f"{outcome['name']}: " + (f"failed: {outcome['error']}" if "error" in outcome else
                                         f"{outcome['tracks']} tracks (+{outcome['added']} −{outcome['removed']})")
        ctx.report(line, current=number, total=len(rows))
    failed = sum(1 for o in outcomes if "error" in o)
    ctx.report(f"Refreshed {len(rows) - failed} smart playlists" + (f", {failed} failed" if failed else ""),
               progress=100)
    return {"playlists": outcomes, "failed": failed, "reason": reason}

