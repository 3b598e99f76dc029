"""The sonic fingerprint playlist as a job (what a schedule starts): the configured account's play history, the
fingerprint mix of discovery/sonic_fingerprint.py on the stored index, and the playlist `<name>_instant` created (or
replaced) on the media server and recorded here."""

from __future__ import annotations

import time
from typing import Any

from db.app_settings import effective_config
from db.playlists import save_playlist
from discovery.exclusions import Exclusions
from discovery.sonic_fingerprint import sonic_fingerprint
from mediaserver import Capability
from services.playlists import NothingWritable, writable_ids
from tasks.catalog import SONIC_FINGERPRINT
from tasks.progress import TaskContext, task
from voyager_manager import load_index

SUFFIX = "_instant"


class FingerprintUnavailable(RuntimeError):
    """No index, or no played song that is analyzed: nothing to build a fingerprint from."""


@task(SONIC_FINGERPRINT.task_type)
def run_sonic_fingerprint_playlist_task(ctx: TaskContext, n: int = 50, playlist_name: str = "Sonic Fingerprint"
                                  ) -> dict[str, Any]:
    config = effective_config(ctx.config, ctx.db)
    ctx.report("Loading the similarity index", phase="index", progress=5)
    loaded = load_index(ctx.db, config.INDEX_NAME, folder=config.index_dir)
    if loaded is None or loaded.live == 0:
        raise FingerprintUnavailable("the similarity index is not built yet: run an analysis first")
    # the saved blocklists and scope: a left-out song is neither suggested nor shapes the fingerprint
    queries = loaded.queries(query_ef=config.VOYAGER_QUERY_EF, exclusions=Exclusions.from_settings(config))
    ctx.report("Reading the play history", phase="history", progress=30)
    server = ctx.media_server()
    played = server.top_played(limit=config.SONIC_FINGERPRINT_TOP_N_SONGS)
    known = queries.lookup([p.item_id for p in played])
    history = [(known[p.item_id], p.last_played) for p in played if p.item_id in known and queries.allows(p.item_id)]
    if not history:
        why = "" if Capability.PLAY_HISTORY in server.capabilities else \
            f" ({server.display_name} keeps no play history)"
        raise FingerprintUnavailable(f"the media server reports no played songs that are analyzed here{why}")
    ctx.check_cancelled()
    result = sonic_fingerprint(history, n=n, neighbours=queries.neighbours, lookup=queries.lookup, now=time.time(),
                               max_per_artist=config.MAX_SONGS_PER_ARTIST,
                               duplicate_distance=config.DUPLICATE_DISTANCE)
    ids, left_out = writable_ids(ctx.db, server, [t.item_id for t, _ in result.tracks])
    name = playlist_name if playlist_name.endswith(SUFFIX) else playlist_name + SUFFIX
    ctx.report(f"Creating the playlist {name!r} with {len(ids)} songs", phase="playlist", progress=70)
    for song in left_out:
        ctx.report(f"Left out {song.artist} – {song.title}: {song.reason}")
    if not ids:
        raise FingerprintUnavailable(str(NothingWritable(left_out)) if left_out else "no songs to put in a playlist")
    playlist_id = server.create_playlist(name, ids)
    save_playlist(ctx.db, name=name, source="fingerprint", item_ids=ids, mediaserver_playlist=playlist_id)
    written = set(ids)
    seeds = sum(1 for track, role in result.tracks if role == "seed" and track.item_id in written)
    ctx.report(f"Created {name!r}: {len(ids)} songs ({seeds} played, {len(ids) - seeds} discovered)", progress=100)
    return {"playlist_name": name, "playlist_id": playlist_id, "tracks": len(ids), "seeds": seeds,
            "played_known": len(history), "left_out": [s.as_dict() for s in left_out]}

