"""/api/health: is everything this server needs up? Open without login, for monitors and Docker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify
from rq import Worker
from werkzeug.wrappers import Response

from config import VERSION
from db import task_status as task_store
from db.migrate import schema_version
from routes.context import runtime
from tasks.catalog import ANALYSIS

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def _cause(exc: Exception) -> str:
    """A short cause for an open endpoint: no host names, ports, paths or server messages (they are logged)."""
    text = str(exc).lower()
    if isinstance(exc, TimeoutError) or "timed out" in text or "timeout" in type(exc).__name__.lower():
        return "timed out"
    if "does not exist" in text or "undefinedtable" in type(exc).__name__.lower():
        return "not migrated yet"
    return "unreachable"


@bp.get("/api/health")
def health() -> tuple[Response, int]:
    rt = runtime()
    database: dict[str, Any] = {"ok": False}
    try:
        database = {"ok": True, "schema_version": schema_version(rt.db)}
    except Exception as exc:
        log.warning("health check: PostgreSQL: %s", exc)
        database["error"] = _cause(exc)

    redis_state: dict[str, Any] = {"ok": False}
    workers: dict[str, Any] = {"ok": False, "count": 0}
    try:
        rt.redis.ping()
        redis_state = {"ok": True}
        count = len(Worker.all(connection=rt.redis))
        workers = {"ok": count > 0, "count": count}
    except Exception as exc:
        log.warning("health check: Redis: %s", exc)
        redis_state["error"] = _cause(exc)

    current = rt.index.current
    built_at = current.built_at if current is not None else None
    index = {"name": rt.index.name, "loaded": current is not None, "size": rt.index.size,
             "built_at": built_at.isoformat() if built_at else None,
             "age_seconds": round((datetime.now(UTC) - built_at).total_seconds()) if built_at else None,
             "error": "the stored index could not be loaded (see the server log)" if rt.index.last_error else None,
             "loads": rt.index.loads, "caches": rt.index.cache_states(),
             "load_seconds": dict(current.load_seconds) if current is not None else None}
    ok = database["ok"] and redis_state["ok"] and workers["ok"]
    body = {"status": "ok" if ok else "degraded", "version": VERSION, "database": database, "redis": redis_state,
            "workers": workers, "index": index, "analysis": _analysis_providers(database["ok"])}
    return jsonify(body), 200 if ok else 503


def _analysis_providers(database_ok: bool) -> dict[str, Any]:
    """The ONNX Runtime providers setting, and what the last analysis run's models ran on; whether a provider was
    passed over (the reasons, which may name library paths, are on the Analysis page, behind the login)."""
    rt = runtime()
    last: dict[str, Any] | None = None
    if database_ok:
        try:
            last = task_store.last_main_task_of_type(rt.db, ANALYSIS.task_type)
        except Exception as exc:
            log.warning("health check: the last analysis run: %s", exc)
    result = (last or {}).get("result") or {}
    return {"onnx_providers": rt.config.ONNX_PROVIDERS, "last_run_providers": result.get("providers") or {},
            "provider_fell_back": bool(result.get("provider_fallbacks"))}
