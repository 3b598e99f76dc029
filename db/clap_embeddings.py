"""Queries on clap_embeddings: one CLAP audio embedding per track, with the model that made it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from db.pool import Database


def save(db: Database, item_id: str, *, model: str, vector: np.ndarray) -> None:
    """Insert or replace the track's embedding (idempotent)."""
    data = np.ascontiguousarray(vector, dtype="<f4")
    db.execute(
        """INSERT INTO clap_embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, %s, %s)
           ON CONFLICT (item_id) DO UPDATE SET model = EXCLUDED.model, dimensions = EXCLUDED.dimensions,
                                               vector = EXCLUDED.vector, created_at = now()""",
        (item_id, model, int(data.shape[0]), data.tobytes()))


def models_of(db: Database, item_ids: Sequence[str]) -> dict[str, str]:
    """item_id → the model of its embedding, for those of `item_ids` that have one."""
    if not item_ids:
        return {}
    rows = db.fetch_all("SELECT item_id, model FROM clap_embeddings WHERE item_id = ANY(%s)", (list(item_ids),))
    return {r["item_id"]: r["model"] for r in rows}


def counts_by_model(db: Database) -> dict[str, int]:
    """How many embeddings each model made, most first."""
    rows = db.fetch_all("SELECT model, count(*) AS n FROM clap_embeddings GROUP BY model ORDER BY n DESC, model")
    return {r["model"]: int(r["n"]) for r in rows}


def load(db: Database, model: str, dimension: int) -> tuple[list[str], np.ndarray]:
    """(item ids, (n, dimension) float32 matrix) of the embeddings `model` made with that width."""
    rows = db.fetch_all(
        "SELECT item_id, vector FROM clap_embeddings WHERE model = %s AND dimensions = %s ORDER BY item_id",
        (model, dimension))
    matrix = np.empty((len(rows), dimension), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i] = np.frombuffer(bytes(row["vector"]), dtype="<f4")
    return [r["item_id"] for r in rows], matrix


def vectors_of(db: Database, item_ids: Sequence[str], model: str) -> dict[str, np.ndarray]:
    """item_id → its `model` embedding, for those of `item_ids` that have one."""
    if not item_ids:
        return {}
    rows = db.fetch_all("SELECT item_id, vector FROM clap_embeddings WHERE model = %s AND item_id = ANY(%s)",
                        (model, list(item_ids)))
    return {r["item_id"]: np.frombuffer(bytes(r["vector"]), dtype="<f4").astype(np.float32) for r in rows}
