"""The web process: `create_app(config)` builds the Flask app.

Only this process holds the Voyager index in memory and listens for reload messages; gunicorn runs it as one
process with threads so the index exists once. `gunicorn 'app:create_app()'` reads the environment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

import config as config_module
from config import Config
from db.migrate import apply_migrations
from infra.connections import get_db, get_redis
from routes import analysis, auth, clustering, discovery_api, health, pages, settings_api, tasks_api
from routes.context import Runtime
from routes.errors import register_error_handlers
from routes.security import AuthState, install_security, session_secret
from tasks.reconcile import reconcile_dead_workers
from voyager_manager import IndexHolder


def _reconcile_periodically(cfg: Config, stop: threading.Event, every: float = 60.0) -> None:
    """Fail tasks whose worker vanished even when no new worker starts to notice (e.g. a removed container)."""
    while not stop.wait(every):
        try:
            reconcile_dead_workers(get_db(cfg), get_redis(cfg), dead_after_seconds=cfg.TASK_DEAD_AFTER_SECONDS)
        except Exception:
            logging.getLogger(__name__).warning("task reconciliation failed; retrying later", exc_info=True)


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may be a Config, a mapping of setting names (tests), or None (environment)."""
    if config is None:
        cfg = config_module.get_config()
    elif isinstance(config, Config):
        cfg = config
    else:
        cfg = Config.from_mapping(config)
    config_module.install(cfg)
    logging.basicConfig(level=cfg.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    apply_migrations(cfg.database_url)
    db = get_db(cfg)
    connection = get_redis(cfg)
    index = IndexHolder(db, cfg.INDEX_NAME)
    index.reload()
    stop_background = index.start_listener(connection, cfg.INDEX_RELOAD_CHANNEL)
    threading.Thread(target=_reconcile_periodically, args=(cfg, stop_background), name="task-reconciler",
                     daemon=True).start()

    app = Flask(__name__)
    secret_key = session_secret(cfg, db)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.SESSION_COOKIE_SECURE,
        SESSION_COOKIE_NAME="audiomuse_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        DEBUG=False,
        TRUSTED_HOSTS=cfg.trusted_hosts,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    auth_state = AuthState.load(cfg, db, session_key=secret_key)
    runtime = Runtime(config=cfg, db=db, redis=connection, index=index, auth=auth_state,
                      stop_background=stop_background)
    app.extensions["audiomuse"] = runtime
    install_security(app, lambda: runtime.auth)
    register_error_handlers(app)
    for blueprint in (auth.bp, pages.bp, tasks_api.bp, health.bp, analysis.bp, settings_api.bp,
                      discovery_api.bp, clustering.bp):
        app.register_blueprint(blueprint)
    return app
