"""A reload of the index and every cache on it while clients keep asking (issue 29): no request fails and every
answer is the one the library gives, before, during and after the swap."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import requests
from werkzeug.serving import make_server

from app import serve
from tests.conftest import wait_for
from tests.seeded_library import seed_groups
from voyager_manager import publish_reload

CLIENTS = 8


def test_two_reloads_under_eight_clients_fail_no_request(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_groups(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_port}"
    holder = app.extensions["audiomuse"].index
    try:
        wait_for(lambda: holder.size == len(tracks) and set(holder.cache_states().values()) == {"ready"},
                 what="the index and its caches")
        seed = tracks[0].item_id
        expected_similar = requests.get(f"{base}/api/similar_tracks", params={"item_id": seed, "n": 5},
                                        timeout=10).json()
        expected_search = requests.get(f"{base}/api/search_tracks", params={"q": tracks[3].title}, timeout=10).json()
        assert expected_similar and expected_search

        stop = threading.Event()
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()

        def client(number: int) -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    if number % 2:
                        answer = session.get(f"{base}/api/similar_tracks", params={"item_id": seed, "n": 5},
                                             timeout=30)
                        same = answer.status_code == 200 and answer.json() == expected_similar
                    else:
                        answer = session.get(f"{base}/api/search_tracks", params={"q": tracks[3].title}, timeout=30)
                        same = answer.status_code == 200 and answer.json() == expected_search
                    outcome = "same" if same else f"{answer.status_code}: {answer.text[:200]}"
                except requests.RequestException as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes[outcome] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(2):
                loads = holder.loads
                wait_for(lambda: outcomes["same"] > 0, what="answers before the reload")
                publish_reload(redis, cfg.INDEX_RELOAD_CHANNEL, cfg.INDEX_NAME)
                wait_for(lambda loads=loads: holder.loads > loads, what="the reload")  # type: ignore[misc]
                served_before = sum(outcomes.values())
                wait_for(lambda before=served_before: sum(outcomes.values()) > before + CLIENTS,  # type: ignore[misc]
                         what="answers after the reload")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert set(outcomes) == {"same"}, outcomes.most_common(5)
        # a reload of the index already held rebuilds its caches one at a time after the swap, each served meanwhile
        wait_for(lambda: set(holder.cache_states().values()) == {"ready"}, what="every cache rebuilt")
        health = requests.get(f"{base}/api/health", timeout=10).json()["index"]
        assert health["size"] == len(tracks) and health["loads"] >= 3  # start-up and the two reloads
        assert outcomes["same"] > 2 * CLIENTS
    finally:
        server.shutdown()
        app.extensions["audiomuse"].stop_background.set()
