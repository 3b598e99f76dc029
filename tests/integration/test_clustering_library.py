"""The clustering task's library at scale: read from PostgreSQL a row at a time into arrays, and handed to the batch
workers through Redis in parts (a Redis string holds 512 MB at most; a million tracks with embeddings are ~1 GB)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.moods import MOODS
from audio.musicnn import MODEL_NAME, MSD_TAGS
from clustering.data import LibraryData, library_from_rows
from db import tracks as track_store
from tasks import clustering as clustering_task


def stored_library(db, n: int, seed: int = 3) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    expected = {}
    with db.transaction() as cur:
        for i in range(n):
            item_id = f"c{i:03d}"
            tags = {t: round(float(rng.random()), 4) for t in MSD_TAGS[: 10 + i % 5]}  # some tags missing
            moods = {m: round(float(rng.random()), 4) for m in MOODS}
            tempo = None if i % 7 == 0 else round(float(rng.uniform(60, 180)), 2)
            vector = rng.normal(size=200).astype("<f4")
            cur.execute("""INSERT INTO tracks (item_id, title, artist, tempo_bpm, energy, tags, moods, analysis_model,
                                               analysis_version, analyzed_at)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, now())""",
                        (item_id, f"Title {i}", f"Artist {i % 4}", tempo, round(float(rng.random()), 3),
                         json.dumps(tags), json.dumps(moods), MODEL_NAME))
            cur.execute("INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, 200, %s)",
                        (item_id, MODEL_NAME, vector.tobytes()))
            expected[item_id] = {"tags": tags, "moods": moods, "tempo": tempo, "vector": vector}
    return expected


def test_the_library_is_read_into_arrays_a_row_at_a_time(db):
    expected = stored_library(db, 40)
    data = clustering_task.load_library(db)
    assert data.item_ids == sorted(expected) and len(data) == 40
    for row, item_id in enumerate(data.item_ids):
        want = expected[item_id]
        assert data.tags[row].tolist() == pytest.approx([want["tags"].get(t, 0.0) for t in MSD_TAGS], abs=1e-6)
        assert data.moods[row].tolist() == pytest.approx([want["moods"][m] for m in MOODS], abs=1e-6)
        assert np.isnan(data.tempo[row]) if want["tempo"] is None else data.tempo[row] == pytest.approx(want["tempo"])
        assert np.array_equal(data.embeddings[row], want["vector"])


@pytest.mark.parametrize("count", [0, 7, 40, 55])
def test_a_count_that_no_longer_holds_still_gives_every_row(db, count):
    """Rows stored or deleted between the count and the read: the arrays grow or are cut to what was read."""
    stored_library(db, 40)
    whole = clustering_task.load_library(db)
    with track_store.clustering_rows(db, MODEL_NAME) as (_, rows):
        data = library_from_rows(rows, count=count, tag_names=MSD_TAGS, mood_names=MOODS)
    assert data.item_ids == whole.item_ids
    for name in ("tags", "moods", "energy", "embeddings"):
        assert np.array_equal(getattr(data, name), getattr(whole, name)), name
    assert np.array_equal(data.tempo, whole.tempo, equal_nan=True)


def test_the_batch_snapshot_holds_the_numbers_and_only_the_embeddings_runs_use(db):
    stored_library(db, 30)
    data = clustering_task.load_library(db)
    for with_embeddings in (False, True):
        copy = LibraryData.from_bytes(data.to_bytes(numbers_only=True, embeddings=with_embeddings))
        assert len(copy) == len(data) and copy.item_ids == [] and copy.titles == []
        assert np.array_equal(copy.features(use_embeddings=False), data.features(use_embeddings=False))
        if with_embeddings:
            assert np.array_equal(copy.features(use_embeddings=True), data.features(use_embeddings=True))
        else:
            assert copy.embeddings.shape == (len(data), 0)
    whole = LibraryData.from_bytes(data.to_bytes())
    assert whole.item_ids == data.item_ids and whole.titles == data.titles


def test_the_snapshot_goes_to_redis_in_parts_and_a_lost_part_is_noticed(redis, monkeypatch):
    monkeypatch.setattr(clustering_task, "SNAPSHOT_PART_BYTES", 1000)
    snapshot = np.random.default_rng(1).bytes(4500)
    clustering_task.store_snapshot(redis, "task-a", snapshot)
    assert int(redis.get(clustering_task.snapshot_key("task-a"))) == 5
    assert clustering_task.load_snapshot(redis, "task-a") == snapshot
    assert clustering_task._keep_snapshot(redis, "task-a")
    assert 0 < redis.ttl(clustering_task.snapshot_key("task-a") + ":4") <= clustering_task.SNAPSHOT_TTL_SECONDS

    redis.delete(clustering_task.snapshot_key("task-a") + ":2")
    assert clustering_task.load_snapshot(redis, "task-a") is None
    assert not clustering_task._keep_snapshot(redis, "task-a")
    clustering_task.store_snapshot(redis, "task-a", snapshot)  # what the search loop does then
    assert clustering_task.load_snapshot(redis, "task-a") == snapshot

    clustering_task.drop_snapshot(redis, "task-a")
    assert not [key for key in redis.scan_iter(clustering_task.snapshot_key("task-a") + "*")]
    assert clustering_task.load_snapshot(redis, "task-a") is None
