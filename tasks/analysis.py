"""Analysis jobs: one main task that walks the library's albums, one child job per album.

On a server that lists its whole library in pages (Capability.LISTS_ALL_TRACKS) a run over all albums first compares
that listing with the stored analysis in PostgreSQL (db.listing) and launches jobs only for the albums with work; a
run that analyzes nothing keeps a current index instead of rebuilding it.

The main task (`main_analysis`, queue high) launches album jobs (`album_analysis`, queue default), keeps at most
MAX_QUEUED_ANALYSIS_JOBS in flight, sums their results, rebuilds the index every REBUILD_INDEX_BATCH_SIZE finished
albums and at the end. An album job analyzes each new or changed track and writes it in one transaction; a track
that fails is recorded with its reason and the job goes on. With CLAP_ENABLED the job also stores each track's CLAP
audio embedding (text search), for unchanged tracks too when theirs was made by another model; a CLAP failure is
counted and reported but does not fail the track.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import psycopg2
from rq.timeouts import BaseTimeoutException

from audio.clap import model_identity
from audio.engine import AnalysisProcessDied, EngineProcess, EngineSettings
from audio.errors import AudioError, DecodeError, DecodeTimeout
from audio.musicnn import MODEL_NAME
from audio.parts import FEATURE_PARTS, PART_VERSIONS
from audio.track_analysis import ANALYSIS_VERSION, TrackAnalysis
from config import Config
from db import analysis_bundles as bundle_store
from db import clap_embeddings as clap_store
from db import listing as listing_store
from db import task_status as task_store
from db import tracks as track_store
from db import voyager_indexes as index_store
from db.clock import database_now
from infra.logs import configure_logging
from mediaserver import (
    Album,
    Capability,
    LibraryTeller,
    MediaServer,
    MediaServerError,
    StickerStore,
    Track,
    TrackLister,
)
from tasks.analysis_summary import MAX_REPORTED_FAILURES, AnalysisSummary
from tasks.catalog import ANALYSIS, MAP, PLAYLIST_MATCHING
from tasks.progress import TaskCancelled, TaskContext, task
from tasks.smart_playlists import start_after as start_smart_refresh_after
from voyager_manager import publish_reload, update_index

log = logging.getLogger(__name__)

MAIN_TASK_TYPE = ANALYSIS.task_type  # the web process enqueues it by name, see tasks.catalog.ANALYSIS
ALBUM_TASK_TYPE = "album_analysis"
MAX_ATTEMPTS = 3  # of a track whose failures were transient (timeouts, network, a worker that died)
LISTING_PAGE_SIZE = 1000  # tracks a request when the server lists its whole library (Capability.LISTS_ALL_TRACKS)

# Failures worth another try on a later run; everything else (an undecodable file) is permanent.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (DecodeTimeout, AnalysisProcessDied, MediaServerError, OSError,
                                                 MemoryError)

# One per worker process, kept across jobs: its analysis process holds the models while album jobs come and ends
# when the worker has been idle for ANALYSIS_IDLE_RELEASE_SECONDS (audio/engine.py).
_engine: EngineProcess | None = None


def engine_settings(config: Config) -> EngineSettings:
    return EngineSettings(
        model_path=str(config.MODEL_PATH), intra_op_threads=config.ONNX_INTRA_OP_THREADS,
        providers=config.ONNX_PROVIDERS, decode_timeout=config.AUDIO_LOAD_TIMEOUT, ffmpeg=config.FFMPEG_BINARY,
        max_track_seconds=config.MAX_TRACK_SECONDS, decoder_memory_limit_mb=config.DECODER_MEMORY_LIMIT_MB or None,
        max_full_seconds=config.MAX_FULL_ANALYSIS_SECONDS, long_track_patches=config.LONG_TRACK_PATCHES,
        clap_enabled=config.CLAP_ENABLED, clap_model_path=config.CLAP_AUDIO_MODEL_PATH,
        clap_dimension=config.CLAP_EMBEDDING_DIMENSION, clap_max_windows=config.CLAP_MAX_SEGMENTS,
        log_level=config.LOG_LEVEL)


def analysis_engine(config: Config) -> EngineProcess:
    """This worker's analysis process (a new one when the settings it was started with changed)."""
    global _engine
    settings = engine_settings(config)
    if _engine is None or _engine.settings != settings or _engine.idle_seconds != config.ANALYSIS_IDLE_RELEASE_SECONDS:
        if _engine is not None:
            _engine.close()
        _engine = EngineProcess(settings, idle_seconds=config.ANALYSIS_IDLE_RELEASE_SECONDS,
                                setup=partial(configure_logging, log_format=config.LOG_FORMAT))
    return _engine


def clap_model_name(config: Config) -> str | None:
    """The CLAP audio model's recorded name when CLAP_ENABLED (raises ClapModelError for a missing file or one that
    is not a CLAP audio encoder), else None."""
    return analysis_engine(config).clap_name() if config.CLAP_ENABLED else None


def file_fingerprint(path: Path) -> str:
    """sha256 of the file's bytes: the track is re-analyzed only when its content changes. (With the CPU's SHA
    instructions sha256 hashed the 0.9 GB dev corpus in 0.6 s, blake2b in 1.0–1.2 s, against ~180 s of analysis;
    without them sha256 would be the slower of the two.)"""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _up_to_date(state: dict[str, Any] | None, track: Track) -> bool:
    if not state:
        return False
    if state["failed_version"] == ANALYSIS_VERSION and state["failed_signature"] == track.signature:
        # Failed before on this very file: a permanent failure is not tried again (a new analysis version or a
        # changed file is), a transient one up to MAX_ATTEMPTS times.
        if not state["failed_retryable"] or state["failed_attempts"] >= MAX_ATTEMPTS:
            return True
    return bool(state["has_embedding"] and state["analysis_version"] == ANALYSIS_VERSION
                and track.signature is not None and state["source_signature"] == track.signature)


@task(ALBUM_TASK_TYPE)
def analyze_album_task(ctx: TaskContext, album_id: str, album_name: str = "", library: str | None = None,
                       patch_stride: int = 1, upgrade_fast: bool = False) -> dict[str, Any]:
    server = ctx.media_server()
    tracks = server.album_tracks(album_id)
    label = album_name or album_id
    state = track_store.analysis_state(ctx.db, [t.item_id for t in tracks])
    summary: dict[str, Any] = {"album_id": album_id, "album": label, "tracks": len(tracks), "analyzed": 0,
                               "skipped": 0, "failed": 0, "failures": [], "audio_seconds": 0.0,
                               "timings": {"decode": 0.0, "mel": 0.0, "inference": 0.0, "features": 0.0, "db": 0.0},
                               "access": {}, "clap_embedded": 0, "clap_failed": 0, "clap_failures": [],
                               "imported": 0, "parts_updated": {}, "fast": 0}
    engine = analysis_engine(ctx.config)
    clap = clap_model_name(ctx.config)
    clap_models = clap_store.models_of(ctx.db, [t.item_id for t in tracks]) if clap else {}
    ctx.report(f"{label}: {len(tracks)} tracks", phase="tracks", current=0, total=len(tracks))
    for number, track in enumerate(tracks, start=1):
        ctx.check_cancelled()
        track_state = state.get(track.item_id)
        if _up_to_date(track_state, track) and not (upgrade_fast and _analysed_fast(track_state)):
            parts = _outdated_parts(track_state, track)
            if parts and track_state is not None:
                outcome = _update_parts(ctx, server, track, track_state, parts, summary)
            else:
                summary["skipped"] += 1
                outcome = "unchanged"
            if clap and track_state and track_state["has_embedding"] and clap_models.get(track.item_id) != clap:
                outcome += _embed_clap_of(ctx, server, track, engine, summary)
        else:
            outcome = _analyze_track(ctx, server, track, track_state, summary, engine=engine, clap=clap is not None,
                                     clap_stale=clap is not None and clap_models.get(track.item_id) != clap,
                                     patch_stride=patch_stride, upgrade_fast=upgrade_fast)
        ctx.report(f"{label}: {number}/{len(tracks)} {track.title} — {outcome}", current=number, total=len(tracks))
    # unchanged tracks' genres may have moved, and tracks analyzed before artist ids were kept get them now
    track_store.save_genres(ctx.db, {t.item_id: t.genres for t in tracks})
    track_store.save_artist_ids(ctx.db, {t.item_id: t.artist_id for t in tracks})
    if library:  # the media-server library the album was listed in (requests can be scoped to it)
        track_store.save_libraries(ctx.db, {t.item_id: library for t in tracks})
    summary["providers"] = engine.providers()  # what this worker's models ran on (audio.providers.ProviderChoice)
    return summary


def _embed_clap_of(ctx: TaskContext, server: MediaServer, track: Track, engine: EngineProcess,
                   summary: dict[str, Any]) -> str:
    """Fetch an unchanged track's audio only to embed it with CLAP; the outcome's suffix."""
    try:
        with server.open_audio(track) as audio:
            return _embed_clap(ctx, engine, track, audio.path, summary)
    except (TaskCancelled, psycopg2.Error, BaseTimeoutException):
        raise
    except Exception as exc:
        return _clap_failed(track, exc, summary)


def _embed_clap(ctx: TaskContext, engine: EngineProcess, track: Track, path: Path, summary: dict[str, Any]) -> str:
    """Store the track's CLAP embedding; a failure is counted and reported, the track's analysis stands. The
    outcome's suffix."""
    try:
        started = time.perf_counter()
        vector = engine.embed_clap(path)
        clap_store.save(ctx.db, track.item_id, model=cast(str, engine.clap_name()), vector=vector)
        summary["timings"]["clap"] = summary["timings"].get("clap", 0.0) + time.perf_counter() - started
    except (TaskCancelled, psycopg2.Error, BaseTimeoutException):
        raise
    except Exception as exc:
        return _clap_failed(track, exc, summary)
    summary["clap_embedded"] += 1
    return ", CLAP embedded"


def _clap_failed(track: Track, exc: Exception, summary: dict[str, Any]) -> str:
    reason = str(exc) if isinstance(exc, (AudioError, MediaServerError)) else f"{type(exc).__name__}: {exc}"
    summary["clap_failed"] += 1
    if len(summary["clap_failures"]) < MAX_REPORTED_FAILURES:
        summary["clap_failures"].append({"item_id": track.item_id, "title": track.title, "artist": track.artist,
                                         "path": track.path, "reason": f"CLAP: {reason}"})
    log.info("CLAP embedding of %s failed: %s", track.path, reason)
    return f", CLAP failed ({reason})"


def _analysed_fast(state: dict[str, Any] | None) -> bool:
    return bool(state and state.get("has_embedding") and (state.get("patch_stride") or 1) > 1)


def _analyze_track(ctx: TaskContext, server: MediaServer, track: Track, state: dict[str, Any] | None,
                   summary: dict[str, Any], *, engine: EngineProcess, clap: bool = False, clap_stale: bool = False,
                   patch_stride: int = 1, upgrade_fast: bool = False) -> str:
    """Analyze the track in the worker's analysis process `engine` (and embed it with CLAP when `clap`); a file whose
    content did not change is not analyzed again, and embedded only when its CLAP embedding is `clap_stale` (missing
    or from another model)."""
    config = ctx.config
    clap_outcome = ""
    try:
        with server.open_audio(track) as audio:
            fingerprint = file_fingerprint(audio.path)
            if (state and state["content_fingerprint"] == fingerprint and state["has_embedding"]
                    and state["analysis_version"] == ANALYSIS_VERSION
                    and not (upgrade_fast and _analysed_fast(state))):
                track_store.mark_unchanged(ctx.db, track.item_id, track.signature)
                parts = _outdated_parts(state, track)
                if not parts:
                    summary["skipped"] += 1
                clap_part = _embed_clap(ctx, engine, track, audio.path, summary) if clap and clap_stale else ""
                if parts:  # the same file moved or touched: its older parts are brought up to date all the same
                    return _update_parts(ctx, server, track, state, parts, summary) + clap_part
                return "unchanged" + clap_part
            analysis = _imported_analysis(ctx, fingerprint, upgrade_fast=upgrade_fast)
            outcome = "imported" if analysis is not None else "analyzed"
            if analysis is not None:  # another install analysed this very file (services/analysis_bundle.py)
                summary["imported"] += 1
            else:
                track_store.mark_attempt(ctx.db, track=track, version=ANALYSIS_VERSION, task_id=ctx.task_id)
                analysis, decode_seconds = engine.analyze(audio.path, patch_stride=patch_stride)
                summary["timings"]["decode"] += decode_seconds
                if patch_stride > 1:
                    summary["fast"] += 1
            started = time.perf_counter()
            track_store.save_analysis(ctx.db, track=track, analysis=analysis, fingerprint=fingerprint,
                                      access=audio.access)
            summary["timings"]["db"] += time.perf_counter() - started
            if clap:
                clap_outcome = _embed_clap(ctx, engine, track, audio.path, summary)
    except (TaskCancelled, psycopg2.Error, BaseTimeoutException):
        raise  # cancellation, a database outage and the job's own timeout end the album job
    except Exception as exc:  # anything else is this track's problem: record it and go on
        return f"failed ({_track_failed(ctx, track, exc, summary)})"
    _write_stickers(config, server, track, {"energy": analysis.energy, "moods": analysis.moods,
                                            "tempo_bpm": analysis.tempo_bpm, "camelot": analysis.camelot})
    for stage, seconds in analysis.timings.items():
        summary["timings"][stage] += seconds
    summary["audio_seconds"] += analysis.duration_seconds
    summary["access"][audio.access] = summary["access"].get(audio.access, 0) + 1
    summary["analyzed"] += 1
    return outcome + clap_outcome


def _imported_analysis(ctx: TaskContext, fingerprint: str, *, upgrade_fast: bool = False) -> TrackAnalysis | None:
    """The analysis imported from a bundle for the file with this content, made by this model and version (not a
    fast one when fast ones are being upgraded)."""
    row = bundle_store.imported_analysis(ctx.db, fingerprint, model=MODEL_NAME, version=ANALYSIS_VERSION)
    if row is None or upgrade_fast and row["patch_stride"] > 1:
        return None
    return TrackAnalysis(
        duration_seconds=float(row["duration_seconds"] or 0.0),
        embedding=np.frombuffer(row["vector"], dtype="<f4").astype(np.float32),
        tags={k: float(v) for k, v in row["tags"].items()}, tempo_bpm=row["tempo_bpm"],
        tempo_confidence=float(row["tempo_confidence"] or 0.0), key=row["musical_key"], scale=row["scale"],
        camelot=row["camelot"], key_confidence=float(row["key_confidence"] or 0.0), energy=float(row["energy"] or 0.0),
        loudness_lufs=row["loudness_lufs"], moods={k: float(v) for k, v in row["moods"].items()},
        patches_analyzed=int(row["patches_analyzed"] or 0), model=row["analysis_model"],
        version=int(row["analysis_version"]), part_versions={p: int(row[f"{p}_version"]) for p in FEATURE_PARTS},
        patch_stride=int(row["patch_stride"]))


def _track_failed(ctx: TaskContext, track: Track, exc: Exception, summary: dict[str, Any], *,
                  doing: str = "") -> str:
    """Record why the track's analysis (or `doing`, e.g. "updating tempo", counted as an attempt of its own) failed,
    transient or for good, in the database and the album's summary; the reason."""
    reason = str(exc) if isinstance(exc, (AudioError, MediaServerError)) else f"{type(exc).__name__}: {exc}"
    retryable = isinstance(exc, TRANSIENT_ERRORS) or (
        isinstance(exc, DecodeError) and "decoder process died" in str(exc))
    shown = f"{doing}: {reason}" if doing else reason
    track_store.record_failure(ctx.db, track=track, reason=shown, version=ANALYSIS_VERSION, task_id=ctx.task_id,
                               retryable=retryable, count_attempt=bool(doing))
    summary["failed"] += 1
    if len(summary["failures"]) < MAX_REPORTED_FAILURES:
        summary["failures"].append({"item_id": track.item_id, "title": track.title, "artist": track.artist,
                                    "path": track.path, "reason": shown})
    log.info("%s of %s failed: %s", doing or "analysis", track.path, reason)
    return reason


def _outdated_parts(state: dict[str, Any] | None, track: Track) -> set[str]:
    """The feature parts of an up-to-date track (its model part current) that an older version of their code made;
    none once updating them failed for good on this file (as db.listing.compare judges it too)."""
    if not state or not state.get("has_embedding"):
        return set()
    if state["failed_version"] == ANALYSIS_VERSION and state["failed_signature"] == track.signature and (
            not state["failed_retryable"] or state["failed_attempts"] >= MAX_ATTEMPTS):
        return set()
    return {part for part in FEATURE_PARTS if (state.get(f"{part}_version") or 0) < PART_VERSIONS[part]}


def _update_parts(ctx: TaskContext, server: MediaServer, track: Track, state: dict[str, Any], parts: set[str],
                  summary: dict[str, Any]) -> str:
    """Compute `parts` of the track again from its decoded audio, without the model, and store them with their
    versions; a failure is recorded like an analysis's and leaves the stored parts as they were."""
    named = ", ".join(sorted(parts))
    try:
        with server.open_audio(track) as audio:
            values = analysis_engine(ctx.config).update_parts(
                audio.path, parts, tags=state.get("tags") or {}, energy=state.get("energy"),
                tempo_confidence=state.get("tempo_confidence"))
        track_store.save_parts(ctx.db, track.item_id, values, {p: PART_VERSIONS[p] for p in sorted(parts)})
    except (TaskCancelled, psycopg2.Error, BaseTimeoutException):
        raise
    except Exception as exc:  # this track's problem: its older parts stay; tried again as a failed analysis is
        return f"{named} not updated ({_track_failed(ctx, track, exc, summary, doing=f'updating {named}')})"
    for part in parts:
        summary["parts_updated"][part] = summary["parts_updated"].get(part, 0) + 1
    stored = {"energy": state.get("energy"), "tempo_bpm": state.get("tempo_bpm"), "camelot": state.get("camelot")}
    _write_stickers(ctx.config, server, track, {**stored, **values})
    return f"{named} updated"


def _write_stickers(config: Config, server: MediaServer, track: Track, results: dict[str, Any]) -> None:
    """With MPD_WRITE_STICKERS, copy the headline results (energy, moods, tempo_bpm, camelot) to MPD so other MPD
    clients can use them."""
    if not (config.MPD_WRITE_STICKERS and Capability.STICKERS in server.capabilities):
        return
    moods = results.get("moods") or {}
    values = {}
    if results.get("energy") is not None:
        values["audiomuse_energy"] = f"{results['energy']:.3f}"
    if moods:
        values["audiomuse_mood"] = max(moods, key=lambda m: moods[m])
    if results.get("tempo_bpm") is not None:
        values["audiomuse_bpm"] = f"{results['tempo_bpm']:.1f}"
    if results.get("camelot"):
        values["audiomuse_camelot"] = results["camelot"]
    try:
        cast(StickerStore, server).write_stickers(track.item_id, values)
    except MediaServerError as exc:  # the analysis itself is saved; stickers are a courtesy copy
        log.warning("stickers for %s not written: %s", track.item_id, exc)


@task(MAIN_TASK_TYPE)
def run_analysis_task(ctx: TaskContext, num_recent_albums: int = 0, top_n_moods: int = 5,
                      rebuild_index: bool = False, fast: bool | None = None,
                      upgrade_fast: bool = False) -> dict[str, Any]:
    """One analysis run. `fast`: every FAST_ANALYSIS_PATCH_STRIDE-th patch through the model (None: fast for the
    first run over a library of at least FAST_ANALYSIS_FIRST_RUN_TRACKS listed tracks, else full); `upgrade_fast`:
    tracks analysed fast before are analysed again with every patch."""
    config = ctx.config
    started = time.monotonic()
    started_at = database_now(ctx.db)
    ctx.report("Listing albums from the media server", phase="listing", progress=0)
    server = ctx.media_server()
    albums = server.list_albums(limit=num_recent_albums if num_recent_albums > 0 else None)
    libraries = _album_libraries(ctx, server, albums)
    totals = AnalysisSummary(albums_total=len(albums), top_n_moods=top_n_moods, clap_enabled=config.CLAP_ENABLED)
    ctx.report(f"Found {len(albums)} albums", phase="tracks", current=0, total=0, progress=0)
    in_flight: dict[str, str] = {}  # child task id → album name
    live: dict[str, tuple[int, int]] = {}  # running child → (tracks done, tracks in its album)
    pace = _Pace(started)
    listed = num_recent_albums <= 0 and bool(albums) and Capability.LISTS_ALL_TRACKS in server.capabilities
    metadata_changed = 0
    listed_tracks = 0
    if listed:
        albums, metadata_changed, listed_tracks = _albums_with_work(ctx, cast(TrackLister, server), albums,
                                                                    libraries, totals, pace, upgrade_fast)
    if fast is None:  # a first run over a huge library: fast by default (stated in the README, upgradable later)
        fast = 0 < config.FAST_ANALYSIS_FIRST_RUN_TRACKS <= listed_tracks and \
            track_store.count_analyzed(ctx.db) == 0
    totals.patch_stride = config.FAST_ANALYSIS_PATCH_STRIDE if fast else 1
    analyzed_since_rebuild = 0
    albums_since_rebuild = 0

    def collect() -> None:
        """Read the album jobs' rows: fold in the finished ones, note how far the running ones are, report."""
        nonlocal analyzed_since_rebuild, albums_since_rebuild
        rows = task_store.children_state(ctx.db, ctx.task_id, list(in_flight))
        finished_any = False
        for row in rows:
            if row["finished_at"] is None:
                if row["total_items"] is not None:
                    live[row["task_id"]] = (int(row["current_item"] or 0), int(row["total_items"]))
                continue
            finished_any = True
            album = in_flight.pop(row["task_id"])
            live.pop(row["task_id"], None)
            albums_since_rebuild += 1
            result = row["result"] or {}
            if row["status"] != task_store.SUCCESS:
                totals.add_album_error(album, row["status"], row["message"])
                continue
            pace.album_done(int(result.get("tracks", 0)))
            analyzed_since_rebuild += totals.add_album(result)
        if finished_any and albums_since_rebuild >= config.REBUILD_INDEX_BATCH_SIZE and analyzed_since_rebuild:
            _rebuild_index(ctx, totals)
            analyzed_since_rebuild = albums_since_rebuild = 0
        if finished_any or pace.due():
            _report_main(ctx, totals, pace, live, log=finished_any)

    for album in albums:
        while len(in_flight) >= config.MAX_QUEUED_ANALYSIS_JOBS:
            ctx.check_cancelled(force=True)
            collect()
            if len(in_flight) >= config.MAX_QUEUED_ANALYSIS_JOBS:
                time.sleep(0.5)
        ctx.check_cancelled()
        child = ctx.spawn_child(analyze_album_task, album_id=album.album_id, album_name=album.name,
                                library=libraries.get(album.album_id), patch_stride=totals.patch_stride,
                                upgrade_fast=upgrade_fast)
        in_flight[child] = album.name
        totals.albums_launched += 1
    while in_flight:
        ctx.check_cancelled(force=True)
        collect()
        if in_flight:
            time.sleep(0.5)
    nothing_changed = False
    if listed and not analyzed_since_rebuild and totals.index_size is None and not rebuild_index:
        # Nothing analyzed: the stored index stands when it holds every embedding (a million-track build is not
        # redone for nothing); the web process reloads its caches only if what they read changed.
        totals.index_size = index_store.current_size(ctx.db, name=config.INDEX_NAME, model=MODEL_NAME)
        # parts computed again (tempo, key, energy, moods) are catalogue columns the web process holds
        rows_changed = metadata_changed or totals.clap_embedded or bool(totals.parts_updated)
        if totals.index_size is not None and rows_changed:
            publish_reload(ctx.redis, config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME)
        nothing_changed = totals.index_size is not None and not rows_changed
    if analyzed_since_rebuild or totals.index_size is None or rebuild_index:
        _rebuild_index(ctx, totals, full=rebuild_index)
    if totals.index_size and not nothing_changed:  # the map, smart playlists and matching would find nothing new
        totals.follow_ups = {"map_task_id": _start_map(ctx),
                             "smart_playlists_task_id": start_smart_refresh_after(ctx, "analysis"),
                             "playlist_matching_task_id": _start_matching(ctx, started_at)}
    totals.elapsed_seconds = round(time.monotonic() - started, 1)
    ctx.report(_summary_line(totals, pace, {}), progress=100)
    return totals.as_result()


def _albums_with_work(ctx: TaskContext, server: TrackLister, albums: list[Album], libraries: dict[str, str],
                      totals: AnalysisSummary, pace: _Pace, upgrade_fast: bool = False) -> tuple[list[Album], int, int]:
    """Of `albums`, those an album job has something to do for, found by streaming the server's whole listing into
    PostgreSQL and comparing it there in one statement (db.listing); the others count as done and unchanged. Every
    listed track gets the listing's genres, artist ids and libraries as an album job would give them: the second
    value is the number of rows that changed."""
    clap_name = None
    if ctx.config.CLAP_ENABLED:
        try:
            clap_name = model_identity(ctx.config.CLAP_AUDIO_MODEL_PATH)
        except OSError:
            return albums, 0, 0  # every album job says what is wrong with the model, as without the listing
    listed = 0

    def pages() -> Iterator[list[Track]]:
        nonlocal listed
        for page in server.all_tracks(page_size=LISTING_PAGE_SIZE):
            listed += len(page)
            if pace.due():  # by time, not per page: the statements stay few however large the library
                ctx.check_cancelled(force=True)
                ctx.report(f"Listed {listed} tracks of {len(albums)} albums", phase="listing", log=False)
            yield page

    with listing_store.staged_listing(ctx.db) as staged:
        staged.add_albums((album.album_id, libraries.get(album.album_id)) for album in albums)
        staged.add_tracks(pages())
        found = staged.compare(version=ANALYSIS_VERSION, max_attempts=MAX_ATTEMPTS, clap_model=clap_name,
                               parts={p: PART_VERSIONS[p] for p in FEATURE_PARTS}, upgrade_fast=upgrade_fast)
        changed = staged.save_metadata()
    totals.albums_done += found.unchanged_albums
    totals.albums_unchanged += found.unchanged_albums
    totals.tracks_skipped += found.unchanged_tracks
    pace.finished_albums += found.unchanged_albums
    pace.finished_tracks += found.unchanged_tracks
    ctx.report(f"Listed {listed} tracks: {found.unchanged_albums} albums unchanged, {len(found.pending)} to "
               "analyze", phase="tracks")
    return [album for album in albums if album.album_id in found.pending], sum(changed.values()), listed


def _album_libraries(ctx: TaskContext, server: MediaServer, albums: list[Album]) -> dict[str, str]:
    """album id → library name where the server can tell (Capability.ALBUM_LIBRARIES); {} where it cannot or
    fails to (the analysis goes on: only the library scope of requests needs it)."""
    if Capability.ALBUM_LIBRARIES not in server.capabilities or not albums:
        return {}
    try:
        return cast(LibraryTeller, server).album_libraries(albums)
    except MediaServerError as exc:
        ctx.append_log(f"Which library each album is in could not be read: {exc}")
        return {}


class _Pace:
    """How far a run is in tracks: those of finished albums plus those the running album jobs report, against the
    tracks known so far plus, for albums not started yet, the average album size seen so far."""

    def __init__(self, started: float, *, report_every: float = 1.0) -> None:
        self.started = started
        self.report_every = report_every
        self.finished_tracks = 0
        self.finished_albums = 0
        self._last_report = 0.0

    def album_done(self, tracks: int) -> None:
        self.finished_tracks += tracks
        self.finished_albums += 1

    def due(self) -> bool:
        """Whether a progress report is due (at most one per `report_every` seconds)."""
        now = time.monotonic()
        if now - self._last_report < self.report_every:
            return False
        self._last_report = now
        return True

    def counts(self, totals: AnalysisSummary, live: dict[str, tuple[int, int]]) -> tuple[int, int, float]:
        """(tracks done, tracks known, estimated tracks in the whole run)."""
        done = self.finished_tracks + sum(d for d, _ in live.values())
        known = self.finished_tracks + sum(t for _, t in live.values())
        albums_seen = self.finished_albums + len(live)
        unseen = max(totals.albums_total - totals.albums_failed - albums_seen, 0)
        per_album = known / albums_seen if albums_seen else 0.0
        return done, known, known + per_album * unseen


def _summary_line(totals: AnalysisSummary, pace: _Pace, live: dict[str, tuple[int, int]]) -> str:
    elapsed = time.monotonic() - pace.started
    done, known, estimate = pace.counts(totals, live)
    rate = done / elapsed * 60 if elapsed > 0 else 0.0
    remaining = estimate - done
    eta = f", ETA {_duration(remaining / rate * 60)}" if rate > 0 and remaining >= 1 else ""
    return (f"Tracks {done}/{known} done so far ({round(estimate)} expected); albums {totals.albums_done}/"
            f"{totals.albums_total} done ({totals.albums_launched} launched, {totals.albums_unchanged} "
            f"unchanged, {totals.albums_failed} failed); tracks {totals.tracks_analyzed} analyzed, "
            f"{totals.tracks_skipped} skipped, {totals.tracks_failed} failed; {rate:.1f} tracks/min{eta}"
            + (f"; CLAP {totals.clap_embedded} embedded, {totals.clap_failed} failed"
               if totals.clap_enabled else "")
            + (f"; fast: every {totals.patch_stride}th patch through the model ({totals.tracks_fast} tracks)"
               if totals.patch_stride > 1 else "")
            + "".join(f"; {part} updated on {count}" for part, count in sorted(totals.parts_updated.items()))
            + "".join(f"; {model} on {', '.join(ran)}" for model, ran in totals.providers.items())
            + (f" ({len(totals.provider_fallbacks)} provider(s) passed over, see the summary)"
               if totals.provider_fallbacks else ""))


def _report_main(ctx: TaskContext, totals: AnalysisSummary, pace: _Pace, live: dict[str, tuple[int, int]], *,
                 log: bool) -> None:
    done, known, estimate = pace.counts(totals, live)
    albums = totals.albums_total or 1
    # Before any album job has said how many tracks it has, the albums themselves are the measure.
    share = done / estimate if estimate > 0 else totals.albums_done / albums
    ctx.report(_summary_line(totals, pace, live), phase="tracks", current=done, total=known,
               progress=95.0 * min(share, 1.0), log=log)


def _rebuild_index(ctx: TaskContext, totals: AnalysisSummary, *, full: bool = False) -> None:
    """Bring the similarity index up to date: the new tracks added in place, or a full rebuild when many changed
    (INDEX_REBUILD_SHARE) or `full` asks for it."""
    config = ctx.config
    ctx.report("Rebuilding the similarity index" if full else "Updating the similarity index", phase="index")
    update = update_index(
        ctx.db, ctx.redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
        m=config.VOYAGER_M, ef_construction=config.VOYAGER_EF_CONSTRUCTION, rebuild_share=config.INDEX_REBUILD_SHARE,
        storage=config.INDEX_STORAGE, folder=config.index_dir, full=full)
    totals.index_size = update.size


def _start_map(ctx: TaskContext) -> str | None:
    """Start the music map's update (new tracks placed, removed ones dropped); when one runs already the web process
    places tracks the map does not hold yet by their index neighbours meanwhile."""
    return ctx.start_follow_up(MAP, {"full": False}, reason="analysis", what="the music map update")


def _start_matching(ctx: TaskContext, since: Any) -> str | None:
    """Suggest playlists for the songs this run analyzed (unless PLAYLIST_MATCHING_AFTER_ANALYSIS is off)."""
    if not ctx.config.PLAYLIST_MATCHING_AFTER_ANALYSIS:
        return None
    return ctx.start_follow_up(PLAYLIST_MATCHING, {"since": since.isoformat(), "full": False}, reason="analysis",
                               what="matching the new songs to your playlists")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"

