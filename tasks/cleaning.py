"""The cleaning job: list the whole media server, plan what to remove (discovery/cleaning.py), and — unless it is a
dry run — delete it in batches, then rebuild the index (the web process reloads it with its caches) and update the
music map.

A confirmed run names the dry run it confirms (`preview_task_id`): it deletes only tracks that preview showed and
that are still orphaned now, and says what changed on the media server since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import psycopg2

from audio.musicnn import MODEL_NAME
from db import cleaning as cleaning_store
from db import task_status as task_store
from db.app_settings import effective_config
from db.clock import database_now
from discovery.cleaning import AnalyzedTrack, CleaningPlan, Listing, orphan_digest, plan_cleaning, previewed_ids
from mediaserver import Album, Capability, MediaServer, MediaServerError, TrackLister
from tasks.catalog import CLEANING, MAP
from tasks.progress import TaskCancelled, TaskContext, task
from tasks.smart_playlists import start_after as start_smart_refresh_after
from voyager_manager import update_index

log = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 20
MAX_LISTED_ALBUMS = 200
LISTING_PAGE_SIZE = 1000  # tracks a request from a server that lists its whole library (Capability.LISTS_ALL_TRACKS)


def list_library(ctx: TaskContext, server: MediaServer, analyzed_albums: set[str]) -> Listing:
    """Every track id the server lists, album by album, and what made the listing incomplete: the album list
    failing, an album failing (an error, a timeout, a 5xx), an album listing no track although analyzed tracks
    belong to it, folders the server could not read."""
    try:
        albums = server.list_albums(limit=None)
    except MediaServerError as exc:
        return Listing(frozenset(), 0, (f"the album list failed: {exc}",))
    problems: list[str] = [f"unreadable: {p}" for p in getattr(server, "listing_problems", ())]
    if Capability.LISTS_ALL_TRACKS in server.capabilities:
        return _list_all_tracks(ctx, cast(TrackLister, server), albums, analyzed_albums, problems)
    item_ids: set[str] = set()
    ctx.report(f"Listing the tracks of {len(albums)} albums", phase="listing", current=0, total=len(albums),
               progress=0)
    last_report = 0.0
    for number, album in enumerate(albums, start=1):
        ctx.check_cancelled()
        try:
            tracks = server.album_tracks(album.album_id)
        except MediaServerError as exc:
            problems.append(f"album {album.name!r}: {exc}")
            continue
        if not tracks and album.album_id in analyzed_albums:
            problems.append(f"album {album.name!r} listed no tracks although analyzed tracks belong to it")
        item_ids.update(t.item_id for t in tracks)
        if time.monotonic() - last_report < 1.0 and number < len(albums):
            continue
        last_report = time.monotonic()
        ctx.report(f"Listed {number}/{len(albums)} albums, {len(item_ids)} tracks", current=number,
                   progress=60.0 * number / max(len(albums), 1), log=False)
    return Listing(frozenset(item_ids), len(albums), tuple(problems))


def _list_all_tracks(ctx: TaskContext, server: TrackLister, albums: list[Album], analyzed_albums: set[str],
                     problems: list[str]) -> Listing:
    """list_library for a server that pages through its whole library: a few requests instead of one per album;
    a failed page makes the listing incomplete, and an analyzed album none of whose tracks came is a problem as
    when its own listing answers empty."""
    item_ids: set[str] = set()
    albums_seen: set[str] = set()
    ctx.report(f"Listing the tracks of {len(albums)} albums", phase="listing", current=0, total=None, progress=0)
    last_report = time.monotonic()
    try:
        for page in server.all_tracks(page_size=LISTING_PAGE_SIZE):
            ctx.check_cancelled()
            item_ids.update(t.item_id for t in page)
            albums_seen.update(t.album_id for t in page)
            if time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                ctx.report(f"Listed {len(item_ids)} tracks of {len(albums)} albums", current=len(item_ids),
                           log=False)
    except MediaServerError as exc:
        problems.append(f"the track listing failed: {exc}")
    else:
        problems.extend(f"album {album.name!r} listed no tracks although analyzed tracks belong to it"
                        for album in albums if album.album_id in analyzed_albums and album.album_id not in albums_seen)
    problems.extend(f"unreadable: {p}" for p in getattr(server, "listing_problems", ())
                    if f"unreadable: {p}" not in problems)
    ctx.report(f"Listed {len(item_ids)} tracks of {len(albums)} albums", current=len(item_ids), progress=60,
               log=False)
    return Listing(frozenset(item_ids), len(albums), tuple(problems))


@task(CLEANING.task_type)
def run_cleaning_task(ctx: TaskContext, dry_run: bool = False, preview_task_id: str | None = None) -> dict[str, Any]:
    config = effective_config(ctx.config, ctx.db)
    preview = _previewed_ids(ctx, preview_task_id) if preview_task_id else None
    ctx.report("Listing the media server's library", phase="listing", progress=0)
    listed_at = database_now(ctx.db)
    rows = cleaning_store.analyzed_tracks(ctx.db)
    analyzed = [AnalyzedTrack(r["item_id"], r["title"], r["artist"], r["album"]) for r in rows]
    analyzed_albums = {r["album_id"] for r in rows if r.get("album_id")}
    listing = list_library(ctx, ctx.media_server(), analyzed_albums)
    for problem in listing.problems[:MAX_LISTED_PROBLEMS]:
        ctx.append_log(f"Listing problem: {problem}")
    plan = plan_cleaning(listing, analyzed, safety_limit=config.CLEANING_SAFETY_LIMIT,
                         min_remaining_fraction=config.CLEANING_MIN_REMAINING_FRACTION)
    summary = _summary(plan, listing, analyzed, dry_run=dry_run, limit=config.CLEANING_SAFETY_LIMIT)
    stale_failures = [] if plan.refused else \
        [i for i in cleaning_store.failure_item_ids(ctx.db) if i not in listing.item_ids]
    summary["stale_failures"] = len(stale_failures)
    if plan.refused:
        ctx.report(plan.refused, progress=100)
        return summary
    to_delete: Sequence[str] = plan.to_delete
    if preview is not None:
        to_delete = _confirmed(ctx, plan, preview, summary)
    if dry_run:
        ctx.report(f"Dry run: {len(plan.orphans)} orphaned tracks found, {len(plan.to_delete)} would be deleted"
                   + (f", and {len(stale_failures)} failure records of files no longer listed" if stale_failures
                      else ""), progress=100)
        return summary
    _delete(ctx, config, to_delete, stale_failures, summary, listed_at=listed_at)
    return summary


def _previewed_ids(ctx: TaskContext, preview_task_id: str) -> list[str]:
    ids = previewed_ids(task_store.get_task(ctx.db, preview_task_id), task_type=CLEANING.task_type)
    if ids is None:
        raise ValueError(f"task {preview_task_id} is not a finished cleaning dry run")
    return ids


def _confirmed(ctx: TaskContext, plan: CleaningPlan, preview: list[str], summary: dict[str, Any]) -> list[str]:
    """What a confirmed run deletes: the previewed tracks that are orphans still (capped like any run)."""
    orphan_ids = {t.item_id for t in plan.orphans}
    keep = [i for i in preview if i in orphan_ids][:len(plan.to_delete)]
    back = [i for i in preview if i not in orphan_ids]
    new = sorted(orphan_ids - set(preview))
    summary["previewed_digest"] = orphan_digest(preview)
    summary["to_delete"] = keep
    summary["digest"] = orphan_digest(keep)
    summary["changed_since_preview"] = bool(back or new)
    if back or new:
        note = "The media server's answer changed since the preview: " + "; ".join(filter(None, [
            f"{len(back)} previewed tracks are listed again and are kept" if back else "",
            f"{len(new)} tracks orphaned since were not previewed and are not deleted (preview again)" if new
            else ""]))
        summary["warnings"].append(note)
        ctx.log(note)
    return keep


def _summary(plan: CleaningPlan, listing: Listing, analyzed: Sequence[AnalyzedTrack], *, dry_run: bool,
             limit: int) -> dict[str, Any]:
    albums = [{"artist": artist, "album": album, "tracks": n}
              for artist, by_album in plan.groups.items() for album, n in by_album.items()]
    return {
        "dry_run": dry_run,
        "albums_listed": listing.albums,
        "tracks_listed": len(listing.item_ids),
        "listing_complete": listing.complete,
        "listing_problems": list(listing.problems[:MAX_LISTED_PROBLEMS]),
        "listing_problem_count": len(listing.problems),
        "analyzed_tracks": len(analyzed),
        "orphan_count": len(plan.orphans),
        "orphaned_album_count": len(albums),
        "orphaned_albums": albums[:MAX_LISTED_ALBUMS],
        "orphans": [{"item_id": t.item_id, "title": t.title, "artist": t.artist, "album": t.album}
                    for t in plan.orphans[:limit]],
        "to_delete": list(plan.to_delete),
        "digest": plan.digest,
        "refused": plan.refused,
        "warnings": list(plan.warnings),
        "safety_limit": limit,
        "safety_limit_applied": len(plan.orphans) > limit and not plan.refused,
        "deleted_count": 0,
        "failed_deletions": [],
    }


def _delete(ctx: TaskContext, config: Any, item_ids: Sequence[str], stale_failures: Sequence[str],
            summary: dict[str, Any], *, listed_at: Any) -> None:
    """Delete in batches (one transaction each); whatever happened, a run that deleted something rebuilds the
    index and updates the map before it ends — a cancelled one too."""
    batch = config.CLEANING_DELETE_BATCH_SIZE
    deleted = kept = failures = points = 0
    total = len(item_ids)
    ctx.report(f"Deleting {total} orphaned tracks", phase="deleting", current=0, total=total, progress=60)
    try:
        for start in range(0, total, batch):
            ctx.check_cancelled(force=True)
            chunk = item_ids[start:start + batch]
            try:
                done = cleaning_store.delete_orphans(ctx.db, chunk, listed_at=listed_at)
            except psycopg2.Error as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                summary["failed_deletions"].extend({"item_id": i, "reason": reason} for i in chunk)
                ctx.log(f"Could not delete {len(chunk)} tracks: {reason}")
                continue
            deleted += done.tracks
            kept += len(done.skipped)
            failures += done.failures
            points += done.map_points
            summary["deleted_count"] = deleted
            ctx.report(f"Deleted {deleted}/{total} orphaned tracks", current=min(start + batch, total),
                       progress=60 + 30.0 * min(start + batch, total) / max(total, 1))
        failures += cleaning_store.delete_failures(ctx.db, stale_failures)
    except TaskCancelled:
        ctx.append_log(f"Cancelled after deleting {deleted} of {total} tracks")
        raise
    finally:
        summary.update(deleted_count=deleted, kept_reanalyzed=kept, failures_removed=failures,
                       map_points_removed=points)
        if deleted:
            _refresh(ctx, config, summary)
    if kept:
        summary["warnings"].append(f"{kept} tracks were analyzed again during this run and are kept")
    ctx.report(f"Deleted {deleted} orphaned tracks" + (f" ({len(summary['failed_deletions'])} failed)"
                                                       if summary["failed_deletions"] else "")
               + (f", {failures} failure records" if failures else "")
               + (f"; the index holds {summary['index_size']} tracks" if deleted else "")
               + (f". {summary['warnings'][0]}" if summary["warnings"] else ""), progress=100)


def _refresh(ctx: TaskContext, config: Any, summary: dict[str, Any]) -> None:
    ctx.report("Updating the similarity index", phase="index", progress=92)
    summary["index_size"] = update_index(
        ctx.db, ctx.redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
        m=config.VOYAGER_M, ef_construction=config.VOYAGER_EF_CONSTRUCTION, rebuild_share=config.INDEX_REBUILD_SHARE,
        storage=config.INDEX_STORAGE, folder=config.index_dir).size
    summary["map_task_id"] = ctx.start_follow_up(MAP, {"full": False}, reason="cleaning",
                                                 what="the music map update")
    summary["smart_playlists_task_id"] = start_smart_refresh_after(ctx, "cleaning")

