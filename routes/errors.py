"""The one JSON error shape of the API: {"error": message, "status": code, "parameter": name-or-null}."""

from __future__ import annotations

from typing import Any

import psycopg2
import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from db.sealed import SealError
from db.task_status import TaskAlreadyRunning
from infra.web_worker import SlowRequestBody
from tasks.catalog import NotStartable, ParamError, by_task_type

RETRY_AFTER_SECONDS = 5


def _unavailable(message: str) -> tuple[Response, int]:
    """503 with Retry-After: a service we depend on is away for now."""
    if wants_json():
        response, status = error_response(503, message, retry_after=RETRY_AFTER_SECONDS)
    else:
        response, status = Response(f"Service unavailable: {message}", mimetype="text/plain"), 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status


class ApiError(Exception):
    """Raise from a view to answer with the API error shape."""

    def __init__(self, status: int, message: str, *, parameter: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.extra = extra


def error_response(status: int, message: str, *, parameter: str | None = None, **extra: Any) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": message, "status": status, "parameter": parameter}
    body.update(extra)
    return jsonify(body), status


def bad_parameter(name: str, value: Any, expected: str) -> ApiError:
    """A 400 that names the parameter, the value received and what was expected."""
    return ApiError(400, f"invalid value for '{name}': {value!r} ({expected})", parameter=name)


def _connection_problem(exc: psycopg2.Error) -> bool:
    """The server cannot be reached or is going away: no SQLSTATE (a connection that failed or broke), class 08
    (connection exception), 57P01–57P03 (shutting down, cannot connect now), 53300 (too many connections)."""
    code = getattr(exc, "pgcode", None)
    return isinstance(exc, psycopg2.InterfaceError) or code is None or code.startswith(("08", "57P0")) or \
        code == "53300"


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/chat/api/")) or request.accept_mimetypes.best == "application/json"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        response, status = error_response(exc.status, exc.message, parameter=exc.parameter, **exc.extra)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response, status

    @app.errorhandler(TaskAlreadyRunning)
    def _busy(exc: TaskAlreadyRunning) -> tuple[Response, int]:
        kind = by_task_type(exc.task_type)
        message = kind.busy if kind else f"a {exc.task_type} task is already running"
        return error_response(409, message, task_id=exc.active_task_id, task_type=exc.task_type)

    @app.errorhandler(ParamError)
    def _bad_task_parameter(exc: ParamError) -> tuple[Response, int]:
        error = bad_parameter(exc.name, exc.value, exc.expected)
        return error_response(400, error.message, parameter=error.parameter)

    @app.errorhandler(NotStartable)
    def _not_startable(exc: NotStartable) -> tuple[Response, int]:
        return error_response(409, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if wants_json():
            return error_response(exc.code or 500, exc.description or exc.name)
        return exc

    @app.errorhandler(SealError)
    def _sealed(exc: SealError) -> Any:
        app.logger.error("%s", exc)
        if wants_json():
            return error_response(503, str(exc))
        return f"Service unavailable: {exc}", 503

    @app.errorhandler(psycopg2.OperationalError)
    @app.errorhandler(psycopg2.InterfaceError)
    def _database_away(exc: psycopg2.Error) -> Any:
        # PostgreSQL restarting or out of reach: the pool replaces dead connections, so the next try works once it
        # is back; say so (503 with Retry-After) rather than an internal error. Other operational errors (a
        # statement timeout, a deadlock, a full disk) are internal errors as before.
        if not _connection_problem(exc):
            return _unexpected(exc)
        app.logger.warning("database unavailable on %s %s: %s", request.method, request.path,
                           str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return _unavailable("the database is not reachable right now; try again in a few seconds")

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_away(exc: redis.exceptions.RedisError) -> Any:
        # Redis restarting or hung: a web thread does not wait for it (workers do); the caller tries again. A wrong
        # password is a misconfiguration, not an outage.
        if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
            return _unexpected(exc)
        app.logger.warning("Redis unavailable on %s %s: %s", request.method, request.path, exc)
        return _unavailable("the task queue (Redis) is not reachable right now; try again in a few seconds")

    @app.errorhandler(SlowRequestBody)
    def _slow_body(exc: SlowRequestBody) -> Any:
        # the web server's minimum body rate (infra/web_worker.py), met while the view read the body
        app.logger.warning("%s %s: %s", request.method, request.path, exc)
        response, status = error_response(408, str(exc), parameter="body")
        response.headers["Connection"] = "close"
        return response, status

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> Any:
        # json.loads recurses once per nesting level: a body nested 100,000 deep is a bad request, not a crash
        if wants_json():
            return error_response(400, "the request body is nested too deeply", parameter="body")
        return "Bad request: nested too deeply", 400

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, f"internal error: {type(exc).__name__}")
        return "Internal server error", 500
