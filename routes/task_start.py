"""Starting a catalogued task from a request: its parameters read by name (JSON body, form or query string), parsed
by the catalogue's parser, and the reference's 202 answer. Refusals (a bad parameter, one already running, a
library too small) become API errors in routes.errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from db import task_status as task_store
from routes.context import runtime
from routes.params import raw_param
from tasks.catalog import TaskKind, start_task


def request_params(kind: TaskKind) -> dict[str, Any]:
    """The request's values of the parameters `kind` takes (keys it does not take are left out)."""
    found = {name: raw_param(name) for name in kind.param_names}
    return {name: value for name, value in found.items() if value is not None}


def start_response(kind: TaskKind, params: Mapping[str, Any] | None = None, *, extra: Mapping[str, Any] | None = None,
                   **fields: Any) -> tuple[Response, int]:
    """Start `kind` with `params` (by default the request's) and answer 202 with `task_id`, `task_type` and
    `status`, plus `fields`."""
    rt = runtime()
    started = start_task(kind, request_params(kind) if params is None else params, db=rt.db, redis=rt.redis,
                         config=rt.config, extra=extra)
    body: dict[str, Any] = {"task_id": started.task_id, "task_type": started.task_type, "status": task_store.PENDING}
    body.update(fields)
    if kind.start is not None:  # a start of its own says what it resolved (clustering: the fitted settings)
        body.update(params=started.params, adjustments=started.notes)
    return jsonify(body), 202
