"""The playlist matching job: read the user's playlists from the media server, (re)compute the profiles whose
membership, analysis version, model or code changed, and suggest for new songs the playlists they fit. Every step
is an upsert keyed by what it depends on, so a run that was killed is simply run again (the panel's task, or the
next analysis) and redoes only what is missing. How a song is scored against a playlist is
discovery.playlist_matching.suggest's.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from audio.analyze import ANALYSIS_VERSION
from audio.moods import MOODS
from audio.musicnn import MODEL_NAME, MSD_TAGS
from db import clap_embeddings as clap_store
from db import playlist_matching as match_store
from db.app_settings import effective_config
from db.exclusions_sql import allowed_item_ids
from discovery.exclusions import Exclusions
from discovery.playlist_matching import PROFILE_CODE_VERSION, membership_hash, profile_of, suggest
from discovery.ranking import unit_mean, unit_rows
from mediaserver import AUTOMATIC_SUFFIX, MediaServerError
from tasks.catalog import PLAYLIST_MATCHING
from tasks.progress import TaskContext, task

log = logging.getLogger(__name__)

PROFILE_KIND = "musicnn-embedding+tags+tempo-energy"
GENERATED_SUFFIXES = (AUTOMATIC_SUFFIX, "_instant", "_smart")
MIN_MEMBERS = 2


@task(PLAYLIST_MATCHING.task_type)
def run_playlist_matching_task(ctx: TaskContext, since: str | None = None, full: bool = False) -> dict[str, Any]:
    server = ctx.media_server()
    ctx.report("Reading your playlists from the media server", phase="playlists", progress=0)
    summary: dict[str, Any] = {"playlists": 0, "generated_skipped": 0, "read_failures": [], "profiles_computed": 0,
                               "profiles_kept": 0, "songs_scored": 0, "suggestions": 0}
    listed = server.list_playlists()
    kept_ids = []
    for number, listed_playlist in enumerate(listed, start=1):
        ctx.check_cancelled()
        generated = listed_playlist.name.endswith(GENERATED_SUFFIXES)
        kept_ids.append(listed_playlist.playlist_id)
        if generated:
            summary["generated_skipped"] += 1
        try:
            tracks = server.playlist_tracks(listed_playlist.playlist_id)
        except MediaServerError as exc:
            summary["read_failures"].append({"playlist": listed_playlist.name, "reason": str(exc)})
            continue  # what was stored of it stays until it can be read
        known = match_store.analyzed_among(ctx.db, MODEL_NAME, tracks)
        members = [i for i in tracks if i in known]
        match_store.save_user_playlist(ctx.db, playlist_id=listed_playlist.playlist_id, name=listed_playlist.name,
                                       item_ids=list(dict.fromkeys(members)),
                                       content_hash=membership_hash(members), generated=generated)
        ctx.report(f"Read {number}/{len(listed)} playlists", progress=30.0 * number / max(len(listed), 1), log=False)
    if not summary["read_failures"] and (listed or not match_store.user_playlists(ctx.db, include_generated=True)):
        match_store.forget_playlists_except(ctx.db, kept_ids)
    elif not listed:  # an empty answer (an unmounted folder, a restarting server) must not wipe the decisions
        ctx.append_log("The media server listed no playlists: keeping the ones read before")
        summary["kept_unlisted"] = True
    match_store.drop_member_suggestions(ctx.db)
    cutoff = datetime.fromisoformat(since) if since and not full else None
    playlists = [p for p in match_store.user_playlists(ctx.db) if len(p["item_ids"]) >= MIN_MEMBERS]
    ctx.check_cancelled()
    ctx.report("Reading the analyzed songs", progress=30, log=False)
    library = match_store.matching_library(ctx.db, MODEL_NAME, members={i for p in playlists for i in p["item_ids"]},
                                           since=cutoff)
    if not len(library.vectors):
        ctx.report("Nothing is analyzed yet: no profile to build", progress=100)
        return summary
    stored = match_store.stored_profile_keys(ctx.db)
    clap_counts = clap_store.counts_by_model(ctx.db)
    clap_model = next(iter(clap_counts), None)  # the model that made most CLAP embeddings, as text search uses
    summary["playlists"] = len(playlists)
    profiles = []
    for number, playlist in enumerate(playlists, start=1):
        ctx.check_cancelled()
        member_rows = [library.member_rows[i] for i in playlist["item_ids"] if i in library.member_rows]
        if len(member_rows) < MIN_MEMBERS:
            continue  # its songs were cleaned since it was read
        profile = profile_of(library, member_rows, tag_names=MSD_TAGS, mood_names=MOODS)
        kind = PROFILE_KIND + (f"+clap:{clap_model}" if clap_model else "")
        key = match_store.ProfileKey(kind, MODEL_NAME, ANALYSIS_VERSION, PROFILE_CODE_VERSION,
                                     playlist["content_hash"])
        if stored.get(playlist["playlist_id"]) != key:
            stats: dict[str, Any] = {"spread": round(profile.spread, 5),
                                     "bpm": [profile.bpm_centre, profile.bpm_spread],
                                     "energy": [profile.energy_centre, profile.energy_spread]}
            if clap_model:
                stats.update(clap_centroid(ctx.db, playlist["item_ids"], clap_model))
            match_store.save_profile(ctx.db, playlist["playlist_id"], key, members=len(member_rows), profile=stats,
                                     centroid=profile.centroid, tag_profile=profile.tag_profile)
            summary["profiles_computed"] += 1
        else:
            summary["profiles_kept"] += 1
        profiles.append((playlist, profile))
        ctx.report(f"Profiled {number}/{len(playlists)} playlists", progress=30 + 30.0 * number / len(playlists),
                   log=False)

    def matched(number: int, total: int) -> None:
        ctx.report(f"Matched new songs against {number}/{total} playlists", progress=60 + 38.0 * number / total,
                   log=False)
        ctx.check_cancelled()

    ctx.check_cancelled()
    found = suggest(library, profiles, decided=match_store.decided(ctx.db), progress=matched)
    summary["songs_scored"] = found.songs_scored
    # a song the saved blocklists and scope leave out is never suggested (it still shapes its playlists' profiles)
    exclusions = Exclusions.from_settings(effective_config(ctx.config, ctx.db))
    allowed = allowed_item_ids(ctx.db, exclusions, sorted({s[0] for s in found.suggestions}))
    kept = [s for s in found.suggestions if s[0] in allowed]
    summary["suggestions"] = match_store.save_suggestions(ctx.db, kept)
    ctx.report(f"{summary['suggestions']} suggestions for {len({s[0] for s in kept})} of {found.songs_scored} songs; "
               f"{summary['profiles_computed']} profiles computed, {summary['profiles_kept']} up to date"
               + (f"; {len(summary['read_failures'])} playlists could not be read" if summary["read_failures"] else ""),
               progress=100)
    return summary


def clap_centroid(db: Any, item_ids: list[str], model: str) -> dict[str, Any]:
    """The unit mean of the members' CLAP embeddings (text search's space), when some members have one."""
    vectors = clap_store.vectors_of(db, item_ids, model)
    if not vectors:
        return {}
    centre = unit_mean(unit_rows(list(vectors.values())))
    return {"clap_model": model, "clap_members": len(vectors), "clap_centroid": [round(float(x), 6) for x in centre]}

