"""Benchmark an analysis run over a library where nothing changed: the bookkeeping alone, at 10k to 1M tracks.

    .venv/bin/python bench/bookkeeping.py [--albums 1000,10000,100000] [--before 1000] [--write bench/RESULTS.md]

For each size: K albums of 10 tracks served by a generated Jellyfin (documented shapes: `/Users/{id}/Items` paged with
StartIndex/Limit/TotalRecordCount, the Fields the adapter asks for; items made from their index when asked, nothing
stored) in a process of its own; `tracks` and `embeddings` seeded by COPY with the rows an album job would have
written for them (200-float synthetic vectors) and a stored index whose size matches (its metadata only: a no-change
run keeps the index and never reads its chunks). Then one analysis task is started as the web page starts it, run by
the real workers (one orchestrator, one album worker), and timed from the start request to the end; meanwhile the
progress and summary APIs are requested every 0.5 s (Flask test client of the real app in this process). `--before`
also times the per-album path (today's path for servers without Capability.LISTS_ALL_TRACKS, forced by asking for
all albums as "recent" ones) at that many albums. Ends with a Markdown table; --write appends it to a file.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.analyze import ANALYSIS_VERSION  # noqa: E402
from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.stack import config_for, embedded_services, task_workers, vacuum  # noqa: E402
from db import task_status as store  # noqa: E402
from db.pool import Database  # noqa: E402
from infra.connections import get_db, get_redis  # noqa: E402
from mediaservers.jellyfin import Jellyfin  # noqa: E402
from tasks.catalog import ANALYSIS, CLEANING  # noqa: E402
from tasks.queues import start_main_task  # noqa: E402

TRACKS_PER_ALBUM = 10
USER_ID = "0f0e0d0c0b0a09080706050403020100"
LIBRARY_ID = "11111111111111111111111111111111"
TOKEN = "bench-token"
FIRST_ADDED = datetime(2020, 1, 1, tzinfo=UTC)
DIMENSIONS = 200
GENRES = ("Rock", "Jazz", "Electronic", "Folk", "Classical")


def _guid(kind: int, number: int) -> str:
    return f"{kind:08x}{number:024x}"


def _date(album: int, offset: int = 0) -> str:
    return (FIRST_ADDED + timedelta(minutes=album, seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def album_item(number: int) -> dict[str, Any]:
    artist = f"Artist {number // 8}"
    return {"Id": _guid(1, number), "Name": f"Album {number}", "Type": "MusicAlbum", "IsFolder": True,
            "AlbumArtist": artist, "AlbumArtists": [{"Name": artist, "Id": _guid(3, number // 8)}],
            "Artists": [artist], "ProductionYear": 1960 + number % 60, "ParentId": LIBRARY_ID,
            "DateCreated": _date(number)}


def track_item(index: int, fields: set[str]) -> dict[str, Any]:
    """Track `index` of the library (album index // 10) as `/Items` renders it with `fields`."""
    album, number = divmod(index, TRACKS_PER_ALBUM)
    artist = f"Artist {album // 8}"
    path = f"/srv/media/Music/{artist}/Album {album}/{number + 1:02d} Song {index}.flac"
    item: dict[str, Any] = {
        "Id": _guid(2, index), "Name": f"Song {index}", "Type": "Audio", "MediaType": "Audio",
        "Album": f"Album {album}", "AlbumId": _guid(1, album), "AlbumArtist": artist, "Artists": [artist],
        "ArtistItems": [{"Name": artist, "Id": _guid(3, album // 8)}], "IndexNumber": number + 1,
        "ParentIndexNumber": 1, "ProductionYear": 1960 + album % 60, "RunTimeTicks": 2_400_000_000 + index,
        "ParentId": _guid(1, album), "ServerId": "bench"}
    if "DateCreated" in fields:
        item["DateCreated"] = _date(album, number + 1)
    if "Path" in fields:
        item["Path"] = path
    if "Etag" in fields:
        item["Etag"] = f"{index * 2654435761 % 2**32:08x}"
    if "Genres" in fields:
        item["Genres"] = [GENRES[album % len(GENRES)]]
    if "MediaSources" in fields:
        item["MediaSources"] = [{"Id": item["Id"], "Protocol": "File", "Path": path, "Type": "Default",
                                 "Container": "flac", "Size": 20_000_000 + index, "RunTimeTicks": item["RunTimeTicks"]}]
    return item


def serve_library(albums: int, port: int) -> None:
    """Serve the generated library on 127.0.0.1:`port` until killed (run in a process of its own)."""
    tracks = albums * TRACKS_PER_ALBUM

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            segments = [s for s in parts.path.split("/") if s]
            if self.headers.get("X-Emby-Token") != TOKEN:
                return self._send(401, {"error": "Unauthorized"})
            if segments == ["Library", "VirtualFolders"]:
                return self._send(200, [{"Name": "Music", "CollectionType": "music", "ItemId": LIBRARY_ID,
                                         "Locations": ["/srv/media/Music"]}])
            if len(segments) != 3 or segments[0] != "Users" or segments[2] != "Items":
                return self._send(404, {"error": f"no route {parts.path}"})
            fields = set(query.get("Fields", "").split(","))
            start, limit = int(query.get("StartIndex", 0)), int(query.get("Limit", 100))
            types, parent = query.get("IncludeItemTypes", ""), query.get("ParentId")
            if types == "MusicAlbum":  # newest first, unless sorted by name (the per-library listing)
                newest = query.get("SortBy") == "DateCreated" and query.get("SortOrder") == "Descending"
                numbers = range(start, min(start + limit, albums))
                items = [album_item(albums - 1 - n if newest else n) for n in numbers]
                return self._send(200, {"Items": items, "TotalRecordCount": albums, "StartIndex": start})
            if types == "Audio" and parent and parent.startswith(_guid(1, 0)[:8]):  # one album's tracks
                album = int(parent[8:], 16)
                items = [track_item(album * TRACKS_PER_ALBUM + n, fields) for n in range(TRACKS_PER_ALBUM)]
                return self._send(200, {"Items": items, "TotalRecordCount": len(items), "StartIndex": 0})
            if types == "Audio":  # the whole library, oldest first
                items = [track_item(i, fields) for i in range(start, min(start + limit, tracks))]
                return self._send(200, {"Items": items, "TotalRecordCount": tracks, "StartIndex": start})
            return self._send(400, {"error": f"unexpected query {query}"})

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's signature)
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class _Copy(io.RawIOBase):
    """Lines generated as COPY reads them."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines, self._buffer = lines, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else 1 << 16
        while len(self._buffer) < size and (line := next(self._lines, None)) is not None:
            self._buffer += line.encode()
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        return chunk


def seed(db: Database, albums: int) -> float:
    """Store every generated track as analyzed (with the adapter's own reading of it) and an index that matches;
    the seconds it took."""
    started = time.perf_counter()
    fields = set("Path,DateCreated,MediaSources,Etag,Genres".split(","))
    tracks = albums * TRACKS_PER_ALBUM
    rng = np.random.default_rng(0)

    def track_lines() -> Iterator[str]:
        for i in range(tracks):
            item = track_item(i, fields)
            t = Jellyfin._track(item, item["AlbumId"])
            yield (f"{t.item_id}\t{t.title}\t{t.artist}\t{t.album}\t{t.album_artist}\t{t.album_id}\t{t.path}\t"
                   f"{t.signature}\tfp{i}\t{MODEL_NAME}\t{ANALYSIS_VERSION}\t2024-01-01\t{{{','.join(t.genres)}}}\t"
                   f"{t.artist_id}\tMusic\n")

    def vector_lines() -> Iterator[str]:
        for start in range(0, tracks, 10_000):
            block = rng.normal(size=(min(10_000, tracks - start), DIMENSIONS)).astype("<f4")
            for offset, row in enumerate(block):
                yield f"{_guid(2, start + offset)}\t{MODEL_NAME}\t{DIMENSIONS}\t\\\\x{row.tobytes().hex()}\n"

    with db.transaction() as cur:
        cur.copy_expert("""COPY tracks (item_id, title, artist, album, album_artist, album_id, file_path,
                                        source_signature, content_fingerprint, analysis_model, analysis_version,
                                        analyzed_at, genres, artist_id, library) FROM STDIN""", _Copy(track_lines()))
        cur.copy_expert("COPY embeddings (item_id, model, dimensions, vector) FROM STDIN", _Copy(vector_lines()))
        cur.execute("""INSERT INTO voyager_indexes (name, model, space, dimensions, num_items, item_ids, byte_size,
                                                    sha256)
                       VALUES ('music_library', %s, 'cosine', %s, %s, '[]', 0, 'bench')""",
                    (MODEL_NAME, DIMENSIONS, tracks))
    vacuum(db, "tracks, embeddings")
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed_run(db: Database, env: dict[str, str], *, recent: int) -> dict[str, Any]:
    """One analysis run (per-album when `recent` > 0), the web APIs polled meanwhile; its figures."""
    from app import create_app

    config = config_for(env)
    client = create_app(config).test_client()
    latencies: dict[str, list[float]] = {"status": [], "summary": []}
    done = threading.Event()
    with task_workers(env, child_workers=1):
        time.sleep(3)  # the workers' start-up is not part of the run
        started = time.perf_counter()
        task_id = start_main_task(ANALYSIS, kwargs={"num_recent_albums": recent, "top_n_moods": 5},
                                  db=get_db(config), connection=get_redis(config), config=config)

        def poll() -> None:
            while not done.is_set():
                for page, url in (("status", f"/api/status/{task_id}"), ("summary", "/api/analysis/summary")):
                    t0 = time.perf_counter()
                    assert client.get(url).status_code == 200
                    latencies[page].append(time.perf_counter() - t0)
                done.wait(0.5)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        while (row := store.get_task(db, task_id)) is None or row["finished_at"] is None:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        done.set()
        poller.join()
    if row["status"] != "SUCCESS":
        raise RuntimeError(f"the analysis ended {row['status']}: {row['message']}")
    children = db.fetch_one("SELECT count(*) AS n FROM task_status WHERE parent_task_id = %s", (task_id,))
    index = db.fetch_one("SELECT sha256 FROM voyager_indexes WHERE name = 'music_library'")
    result = row["result"]
    return {"seconds": seconds, "albums_launched": result["albums_launched"], "children": children["n"] if children
            else 0, "unchanged": result["albums_unchanged"], "index_size": result["index_size"],
            "index": "kept" if index and index["sha256"] == "bench" else "rebuilt",
            **{f"{page}_ms": _spread(times) for page, times in latencies.items()}}


def _spread(seconds: list[float]) -> str:
    """p50 / max in ms."""
    if not seconds:
        return "–"
    return f"{1000 * statistics.median(seconds):.0f} / {1000 * max(seconds):.0f}"


def timed_cleaning(db: Database, env: dict[str, str]) -> dict[str, Any]:
    """A cleaning dry run against the same listing (the analysis run's follow-ups dropped first: the map job would
    build a map of the whole library); its seconds and what it found."""
    from rq import Queue

    config = config_for(env)
    Queue("high", connection=get_redis(config)).empty()
    with task_workers(env, child_workers=0):
        time.sleep(3)
        started = time.perf_counter()
        task_id = start_main_task(CLEANING, kwargs={"dry_run": True}, db=get_db(config),
                                  connection=get_redis(config), config=config)
        while (row := store.get_task(db, task_id)) is None or row["finished_at"] is None:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    if row["status"] != "SUCCESS":
        raise RuntimeError(f"the cleaning ended {row['status']}: {row['message']}")
    result = row["result"]
    return {"cleaning_s": seconds, "cleaning": f"{result['tracks_listed']:,} listed, {result['orphan_count']} "
            f"orphans, complete: {result['listing_complete']}"}


def one_size(albums: int, *, recent: int = 0, cleaning: bool = False, analysis: bool = True) -> dict[str, Any]:
    port = _free_port()
    server = multiprocessing.get_context("fork").Process(target=serve_library, args=(albums, port), daemon=True)
    server.start()
    try:
        with embedded_services() as (work, database_url, redis_url):
            db = Database(database_url, max_connections=4)
            seeded = seed(db, albums)
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                       DATA_DIR=str(work / "data"), MEDIASERVER_TYPE="jellyfin",
                       JELLYFIN_URL=f"http://127.0.0.1:{port}", JELLYFIN_USER_ID=USER_ID, JELLYFIN_TOKEN=TOKEN)
            figures = timed_run(db, env, recent=recent) if analysis else {}
            if cleaning:
                figures.update(timed_cleaning(db, env))
            db.close()
    finally:
        server.kill()
        server.join()
    return {"albums": albums, "tracks": albums * TRACKS_PER_ALBUM, "seed_s": seeded, **figures,
            "path": "per album (before)" if recent else "listing + SQL"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", default="1000,10000,100000", help="comma-separated album counts (×10 tracks)")
    parser.add_argument("--before", type=int, default=0, help="also time the per-album path at this many albums")
    parser.add_argument("--cleaning", action="store_true", help="also time a cleaning dry run at each size")
    parser.add_argument("--only-cleaning", action="store_true", help="time the cleaning dry run alone")
    parser.add_argument("--write", type=Path, help="append the report to this file")
    args = parser.parse_args()
    rows = []
    if args.before:
        rows.append(one_size(args.before, recent=args.before))
        print(rows[-1], flush=True)
    for albums in (int(a) for a in args.albums.split(",")):
        rows.append(one_size(albums, cleaning=args.cleaning or args.only_cleaning, analysis=not args.only_cleaning))
        print(rows[-1], flush=True)
    lines = ["", "## Analysis bookkeeping: a run where nothing changed (`bench/bookkeeping.py`)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d')}. A generated Jellyfin (documented shapes, its own process) lists K albums "
             "of 10 tracks; every track is stored as analyzed (synthetic 200-float vectors) with a matching index. "
             "Time from the start request to the task's end, one orchestrator and one album worker; the progress "
             "(`/api/status/<id>`) and summary (`/api/analysis/summary`) APIs requested every 0.5 s meanwhile.", "",
             "| tracks | path | run s | album jobs | albums unchanged | index (size) | progress API p50 / max ms | "
             "summary API p50 / max ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if "seconds" in r):
        lines.append(f"| {r['tracks']:,} | {r['path']} | **{r['seconds']:.1f}** | {r['children']} | "
                     f"{r['unchanged']:,} | {r['index']} ({r['index_size']:,}) | {r['status_ms']} | "
                     f"{r['summary_ms']} |")
    cleaned = [r for r in rows if "cleaning_s" in r]
    if cleaned:
        lines += ["", "Cleaning dry run against the same listing (one orchestrator worker, right after):", "",
                  "| tracks | dry run s | found |", "|---|---|---|"]
        lines += [f"| {r['tracks']:,} | **{r['cleaning_s']:.1f}** | {r['cleaning']} |" for r in cleaned]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        with args.write.open("a") as out:
            out.write(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
