"""/api/health: is everything this server needs up? Open without login, for monitors and Docker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify
from rq import Worker
from werkzeug.wrappers import Response

from config import VERSION
from db.migrate import schema_version
from routes.context import runtime

bp = Blueprint("health", __name__)


@bp.get("/api/health")
def health() -> tuple[Response, int]:
    rt = runtime()
    database: dict[str, Any] = {"ok": False}
    try:
        database = {"ok": True, "schema_version": schema_version(rt.db)}
    except Exception as exc:
        database["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]

    redis_state: dict[str, Any] = {"ok": False}
    workers: dict[str, Any] = {"ok": False, "count": 0}
    try:
        rt.redis.ping()
        redis_state = {"ok": True}
        count = len(Worker.all(connection=rt.redis))
        workers = {"ok": count > 0, "count": count}
    except Exception as exc:
        redis_state["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]

    current = rt.index.current
    built_at = current.built_at if current is not None else None
    index = {"name": rt.index.name, "loaded": current is not None, "size": rt.index.size,
             "built_at": built_at.isoformat() if built_at else None,
             "age_seconds": round((datetime.now(UTC) - built_at).total_seconds()) if built_at else None,
             "error": rt.index.last_error}
    ok = database["ok"] and redis_state["ok"] and workers["ok"]
    body = {"status": "ok" if ok else "degraded", "version": VERSION, "database": database, "redis": redis_state,
            "workers": workers, "index": index}
    return jsonify(body), 200 if ok else 503
