"""The web process: `create_app(config)` builds the Flask app, `start_web_process(app)` starts its work.

`create_app` has no side effects beyond opening the connection pools (and, with CLAP_ENABLED, reading the CLAP text
model once to refuse a wrong one with ClapModelError): no migrations, no index load, no threads, no
database writes (the session key and auth state are read on first use), so tests and scripts can build an app as
they like. `start_web_process` applies migrations, loads the Voyager index and starts the index-reload listener and
the task reconciler. `serve()` does both and is what gunicorn runs (`gunicorn 'app:serve()'`, one process with
threads, so the index exists once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

import config as config_module
import routes.analysis
import routes.artists
import routes.audio
import routes.auth
import routes.backup
import routes.chat
import routes.cleaning
import routes.clustering
import routes.discovery
import routes.health
import routes.home
import routes.map
import routes.metrics
import routes.mix
import routes.pages
import routes.playlist_matching
import routes.schedules
import routes.search
import routes.settings
import routes.smart_playlists
import routes.sync
import routes.tasks
import routes.text_search
import routes.versions
from config import Config
from db.app_settings import seal_plaintext
from db.chat_queries import ensure_chat_role
from db.migrate import apply_migrations
from infra.connections import get_db, get_redis
from infra.data_dir import private_data_dir
from infra.logs import configure_logging
from routes.context import Runtime
from routes.errors import register_error_handlers
from routes.params import refuse_nul_bytes
from routes.security import SESSION_DAYS, LazyKeySessionInterface, install_security, setup_code
from routes.static_files import install_static_files
from services.artists import CACHE_NAME as ARTIST_CACHE
from services.artists import build_artist_model, keep_artist_model
from services.map import CACHE_NAME as MAP_CACHE
from services.map import map_cache_builder, move_web_map
from services.search import CACHE_NAME as SEARCH_FACETS_CACHE
from services.search import build_search_facets, carry_search_facets, move_search_facets
from services.text_search import CACHE_NAME as TEXT_SEARCH_CACHE
from services.text_search import (
    CLAP_CACHE_NAME,
    build_searchable_library,
    clap_library_builder,
    clap_model_for,
    move_clap_library,
    move_searchable_library,
    text_model_for,
)
from tasks.reconcile import reconcile_dead_workers
from voyager_manager import IndexHolder

log = logging.getLogger(__name__)


def _config_from(config: Config | Mapping[str, Any] | None) -> Config:
    if config is None:
        return config_module.get_config()
    if isinstance(config, Config):
        return config
    return Config.from_mapping(config)


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may be a Config, a mapping of setting names (tests), or None (environment)."""
    cfg = _config_from(config)
    config_module.install(cfg)
    configure_logging(cfg.LOG_LEVEL, cfg.LOG_FORMAT)
    db = get_db(cfg)
    runtime = Runtime(config=cfg, db=db, redis=get_redis(cfg),
                      index=IndexHolder(db, cfg.INDEX_NAME, folder=cfg.index_dir),
                      text_model=text_model_for(cfg), clap_model=clap_model_for(cfg))
    runtime.index.add_cache(MAP_CACHE, map_cache_builder(cfg), move=move_web_map)
    runtime.index.add_cache(TEXT_SEARCH_CACHE, build_searchable_library, move=move_searchable_library)
    runtime.index.add_cache(SEARCH_FACETS_CACHE, build_search_facets, carry=carry_search_facets,
                            move=move_search_facets)
    runtime.index.add_cache(ARTIST_CACHE, build_artist_model, move=keep_artist_model)
    if runtime.clap_model is not None:
        runtime.index.add_cache(CLAP_CACHE_NAME, clap_library_builder(cfg.CLAP_EMBEDDING_DIMENSION),
                                move=move_clap_library)

    app = Flask(__name__, static_folder=None)  # static/ is served by routes.static_files (compressed, versioned)
    app.session_interface = LazyKeySessionInterface(lambda: runtime.session_key)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.SESSION_COOKIE_SECURE,
        SESSION_COOKIE_NAME="audiomuse_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS),
        DEBUG=False,
        TRUSTED_HOSTS=cfg.trusted_hosts,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["audiomuse"] = runtime
    install_security(app, lambda: runtime.auth, exposed=cfg.exposed, note_token_use=runtime.note_token_use)
    register_error_handlers(app)
    app.before_request(refuse_nul_bytes)
    install_static_files(app)
    for blueprint in (routes.auth.bp, routes.pages.bp, routes.tasks.bp, routes.health.bp, routes.home.bp,
                      routes.analysis.bp, routes.settings.bp, routes.discovery.bp, routes.clustering.bp, routes.map.bp,
                      routes.text_search.bp, routes.audio.bp, routes.chat.bp, routes.cleaning.bp, routes.schedules.bp,
                      routes.search.bp, routes.smart_playlists.bp, routes.playlist_matching.bp, routes.mix.bp,
                      routes.artists.bp, routes.sync.bp, routes.versions.bp, routes.metrics.bp, routes.backup.bp):
        app.register_blueprint(blueprint)
    runtime.metrics = routes.metrics.WebMetrics(runtime)
    routes.metrics.install_request_metrics(app, runtime.metrics)
    return app


def start_web_process(app: Flask) -> None:
    """The web process's start-up: migrations, the index (and the caches on it), the reload listener and the task
    reconciler (both daemon threads, ended by setting the runtime's `stop_background`)."""
    runtime: Runtime = app.extensions["audiomuse"]
    cfg = runtime.config
    private_data_dir(cfg.DATA_DIR)
    apply_migrations(cfg.database_url)
    runtime.chat_role = ensure_chat_role(runtime.db, cfg.AI_CHAT_DB_USER_NAME, cfg.AI_CHAT_DB_USER_PASSWORD)
    if not runtime.chat_role.ready:
        log.warning("the chat's database role %s is not set up (%s); run as a superuser:\n%s", runtime.chat_role.name,
                    runtime.chat_role.problem, runtime.chat_role.operator_sql)
    for key in seal_plaintext(runtime.db, cfg):
        log.info("stored setting %s is sealed now (it was kept in plain text before)", key)
    if cfg.exposed and not runtime.auth.enabled:
        code = setup_code(runtime.db)
        runtime.forget_auth()  # read again with the code
        log.warning("AudioMuse listens on %s with no admin password: until one is set, it answers only /setup, "
                    "which asks for the setup code %s (or set ADMIN_PASSWORD)", cfg.HOST, code)
    # The index first (discovery answers at once); the caches on it (the map) are built meanwhile.
    if runtime.index.reload(build_caches=False):
        runtime.index.rebuild_caches_in_background()
    runtime.index.listen_in_background(runtime.redis, cfg.INDEX_RELOAD_CHANNEL, runtime.stop_background)
    runtime.text_model.unload_when_idle(runtime.stop_background)
    if runtime.clap_model is not None:
        runtime.clap_model.unload_when_idle(runtime.stop_background)
    threading.Thread(target=_reconcile_periodically, args=(runtime,), name="task-reconciler", daemon=True).start()


def serve(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """The app with its web process started: what gunicorn runs."""
    app = create_app(config)
    start_web_process(app)
    return app


def _reconcile_periodically(runtime: Runtime, every: float = 60.0) -> None:
    """Fail tasks whose worker vanished even when no new worker starts to notice (e.g. a removed container)."""
    while not runtime.stop_background.wait(every):
        try:
            reconcile_dead_workers(runtime.db, runtime.redis,
                                   dead_after_seconds=runtime.config.TASK_DEAD_AFTER_SECONDS)
        except Exception:
            log.warning("task reconciliation failed; retrying later", exc_info=True)
