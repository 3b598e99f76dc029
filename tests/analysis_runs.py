"""Running an analysis end to end in tests: the workers supervisord would run, and one run through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from db import task_status as store
from tests.conftest import wait_for


def start_analysis_workers(worker_processes: Callable[..., Any], env: dict[str, str]) -> tuple[Any, Any]:
    """One orchestrator worker (queue high) and one album worker (queue default), as supervisord runs them."""
    return worker_processes("--queues", "high", env=env), worker_processes("--queues", "default", env=env)


def run_analysis(client: Any, db: Any, *, num_recent_albums: int = 0, timeout: float = 240) -> dict[str, Any]:
    """Start an analysis through the API and wait for it to end; return its task_status row."""
    response = client.post("/api/analysis/start", json={"num_recent_albums": num_recent_albums, "top_n_moods": 3})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["task_type"] == "main_analysis" and body["status"] == "PENDING"

    def finished() -> dict[str, Any] | None:
        row = store.get_task(db, body["task_id"])
        return row if row and row["finished_at"] else None

    task: dict[str, Any] = wait_for(finished, timeout=timeout, what="the analysis to finish")
    return task
