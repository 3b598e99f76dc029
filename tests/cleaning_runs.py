"""Cleaning runs through the API in tests: start one, let a worker run it, read its task row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from audio.musicnn import MODEL_NAME
from db import task_status as store
from mediaserver import Track
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings


class CleaningSite:
    """A web process (its test client) and the database; `run_worker` runs queued jobs (a burst worker), or does
    nothing when worker processes run them."""

    def __init__(self, app: Any, db: Any, run_worker: Callable[[], None] | None = None) -> None:
        self.app, self.db = app, db
        self.run_worker = run_worker or (lambda: None)
        self.client = app.test_client()

    @property
    def config(self) -> Any:
        return self.app.extensions["audiomuse"].config

    def start(self, **body: Any) -> str:
        response = self.client.post("/api/cleaning/start", json=body)
        assert response.status_code == 202, response.get_json()
        started = response.get_json()
        assert started["task_type"] == "cleaning" and started["status"] == "PENDING"
        return str(started["task_id"])

    def run(self, **body: Any) -> dict[str, Any]:
        """Start a cleaning run and let the burst worker run it and the jobs it starts; its task row."""
        task_id = self.start(**body)
        self.run_worker()
        row = store.get_task(self.db, task_id)
        assert row is not None and row["status"] == "SUCCESS", row
        return row

    def count(self, table: str) -> int:
        return int(self.db.fetch_one(f"SELECT count(*) AS n FROM {table}")["n"])


def seed_tracks(db: Any, redis: Any, config: Any, tracks: Sequence[Track]) -> None:
    """Store `tracks` as analyzed (hand-made vectors, their album ids) and build the index."""
    rng = np.random.default_rng(3)
    for track in tracks:
        insert_track(db, item_id=track.item_id, title=track.title, artist=track.artist, path=track.path or "",
                     vector=rng.normal(size=16))
        db.execute("UPDATE tracks SET album = %s, album_id = %s WHERE item_id = %s",
                   (track.album, track.album_id, track.item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)
