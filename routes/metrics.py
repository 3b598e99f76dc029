"""`/metrics` in Prometheus's text format, behind the same login or API token as the rest of the API.

Requests are counted and timed as they are served (per route pattern, so one metric per route however many ids it
is called with); everything else is read when Prometheus scrapes: tasks per type and outcome with the time they
ran (PostgreSQL), queue lengths and workers idle or busy (Redis), tracks analysed, the index's size and age, and
the memory of each in-memory cache (its numpy arrays, which is nearly all of it). The metric names are listed in
the README ("Metrics").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq import Queue, Worker

from db import task_status as task_store
from db import tracks as track_store
from routes.context import Runtime, runtime
from tasks.queues import QUEUE_NAMES

bp = Blueprint("metrics", __name__)


class WebMetrics:
    """The web process's registry: its request metrics and the collector read at each scrape."""

    def __init__(self, rt: Runtime) -> None:
        # auto_describe off: registering the collector must not read PostgreSQL and Redis (it reads them per scrape)
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("audiomuse_http_requests", "HTTP requests served, by route pattern, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("audiomuse_http_request_seconds", "Time to answer a request, by route pattern",
                                 ["route", "method"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.registry.register(_LibraryCollector(rt))


class _LibraryCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        tasks = CounterMetricFamily("audiomuse_tasks", "Tasks recorded, by type and status", labels=["type", "status"])
        seconds = CounterMetricFamily("audiomuse_task_seconds", "Time the finished tasks ran, by type and status",
                                      labels=["type", "status"])
        for row in task_store.outcomes(rt.db):
            tasks.add_metric([row["task_type"], row["status"]], int(row["tasks"]))
            seconds.add_metric([row["task_type"], row["status"]], float(row["seconds"]))
        yield tasks
        yield seconds
        yield GaugeMetricFamily("audiomuse_tracks_analyzed", "Tracks with an analysis",
                                value=track_store.count_analyzed(rt.db))
        queues = GaugeMetricFamily("audiomuse_queue_length", "Jobs waiting in each RQ queue", labels=["queue"])
        for name in QUEUE_NAMES:
            queues.add_metric([name], len(Queue(name, connection=rt.redis)))
        yield queues
        states = {"busy": 0, "idle": 0}
        for worker in Worker.all(connection=rt.redis):
            states["busy" if worker.get_state() == "busy" else "idle"] += 1
        workers = GaugeMetricFamily("audiomuse_workers", "RQ workers, by state", labels=["state"])
        for state, count in states.items():
            workers.add_metric([state], count)
        yield workers
        current = rt.index.current
        yield GaugeMetricFamily("audiomuse_index_tracks", "Tracks in the loaded similarity index", value=rt.index.size)
        built_at = current.built_at if current is not None else None
        age = GaugeMetricFamily("audiomuse_index_age_seconds", "Seconds since the loaded index was built")
        if built_at is not None:
            age.add_metric([], (datetime.now(UTC) - built_at).total_seconds())
        yield age
        memory = GaugeMetricFamily("audiomuse_cache_bytes", "Memory of each in-memory cache's arrays",
                                   labels=["cache"])
        for name in rt.index.cache_states():
            memory.add_metric([name], array_bytes(rt.index.cache(name)))
        yield memory


def array_bytes(value: Any, *, depth: int = 3) -> int:
    """The bytes of the numpy arrays in `value` (itself, its attributes, or the items of a dict, list or tuple),
    `depth` levels down; each array counted once."""
    seen: set[int] = set()

    def walk(item: Any, level: int) -> int:
        if isinstance(item, np.ndarray):
            if id(item) in seen:
                return 0
            seen.add(id(item))
            return int(item.nbytes)
        if level == 0 or item is None or isinstance(item, str | bytes | int | float | bool):
            return 0
        if isinstance(item, dict):
            return sum(walk(v, level - 1) for v in item.values())
        if isinstance(item, list | tuple):
            return sum(walk(v, level - 1) for v in item[:1000]) if item and isinstance(item[0], np.ndarray | dict
                                                                                          | list | tuple) else 0
        fields = getattr(item, "__dict__", None) or {
            slot: getattr(item, slot, None) for slot in getattr(type(item), "__slots__", ())}
        return sum(walk(v, level - 1) for v in fields.values())

    return walk(value, depth)


def install_request_metrics(app: Flask, metrics: WebMetrics) -> None:
    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _served(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.requests.labels(route, request.method, str(response.status_code)).inc()
            metrics.latency.labels(route, request.method).observe(time.perf_counter() - started)
        return response


@bp.get("/metrics")
def metrics() -> Response:
    rt = runtime()
    return Response(generate_latest(rt.metrics.registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
