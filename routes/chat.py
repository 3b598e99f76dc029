"""Instant playlist (chat): the reference's routes, answered by services.chat."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from ai import PROVIDERS, default_model
from discovery.exclusions import Exclusions
from routes.common import exclusions_json, left_out_note, playlist_request, publish, request_exclusions
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import has_control_characters, json_body
from routes.ratelimit import over_limit
from services.chat import ChatContext, ChatRequest, chat_playlist
from services.config_snapshot import chat_defaults
from services.text_search import query_concepts

bp = Blueprint("chat", __name__)

MAX_INPUT = 1000


def _similar(rt: Runtime, exclusions: Exclusions) -> Any:
    """"Songs like <title>": the song and its nearest neighbours in the index that `exclusions` allow (nothing while
    no index is loaded)."""

    def similar(item_id: str, n: int) -> list[str]:
        queries = rt.index.queries(query_ef=rt.config.VOYAGER_QUERY_EF, exclusions=exclusions)
        seed = queries.lookup([item_id]).get(item_id) if queries is not None else None
        if queries is None or seed is None:
            return []
        hits = queries.neighbours(seed.vector, n + 1)
        return [item_id] + [i for i, _ in hits if i != item_id][:max(n - 1, 0)]

    return similar


def _optional_text(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length or has_control_characters(value):
        raise bad_parameter(name, value, f"text of at most {max_length} characters")
    return value.strip() or None


@bp.post("/chat/api/chatPlaylist")
def chat_playlist_route() -> Response:
    """{userInput, ai_provider?, ai_model?, ollama_server_url?} → {"response": {message, original_request,
    ai_provider_used, ai_model_selected, executed_query, query_params, query_results, path, warnings}}."""
    rt = runtime()
    body = json_body()
    text = body.get("userInput")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INPUT:
        raise bad_parameter("userInput", text, f"a request of 1 to {MAX_INPUT} characters")
    provider = _optional_text(body, "ai_provider", 40)
    if provider is not None and provider.lower() not in (*PROVIDERS, "none"):
        raise bad_parameter("ai_provider", provider, "one of " + ", ".join(("none", *PROVIDERS)))
    model = _optional_text(body, "ai_model", 200)
    url = _optional_text(body, "ollama_server_url", 500)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise bad_parameter("ollama_server_url", url, "an http:// or https:// URL without user or password")
        if not rt.config.allows_ai_url(url):
            raise ApiError(400, "ollama_server_url is not a server this AudioMuse may call: set it as "
                                "OLLAMA_SERVER_URL or add it to AI_ALLOWED_URLS", parameter="ollama_server_url")
    wait = over_limit(rt.redis, "chat", limit=rt.config.CHAT_MAX_REQUESTS_PER_MINUTE, window_seconds=60)
    if wait is not None:
        raise ApiError(429, f"too many playlist requests; try again in {wait} s", retry_after=wait)
    loaded = rt.index.state.index
    exclusions = request_exclusions(rt)
    queries = rt.index.queries(query_ef=rt.config.VOYAGER_QUERY_EF, exclusions=exclusions)
    ctx = ChatContext(config=rt.config, db=rt.db, role=rt.chat_role, calls=rt.chat_calls, pacer=rt.chat_pacer,
                      similar=_similar(rt, exclusions), names=rt.chat_names,
                      library_key=loaded.sha256 if loaded else None,
                      concepts=lambda q: [(c.source, c.key, w) for c, w in query_concepts(rt.text_model, q)],
                      allowed=queries.allows if queries is not None and queries.mask is not None else None)
    answer = chat_playlist(ctx, ChatRequest(text.strip(), provider.lower() if provider else None, model, url))
    if queries is not None:
        answer["response"].update(exclusions_json(queries.exclusions, queries.mask))
    return jsonify(answer)


@bp.post("/chat/api/create_playlist")
def create_playlist() -> Response:
    """{playlist_name, item_ids} → {message: "Successfully created playlist '<name>_instant' with N songs",
    playlist_id}; 502 when the media server fails."""
    rt = runtime()
    name, ids = playlist_request("item_ids")
    published = publish(rt, name, ids, source="chat", ids_field="item_ids")
    return jsonify({"message": f"Successfully created playlist '{published.name}' with {published.track_count} "
                               f"songs{left_out_note(published)}", "playlist_id": published.playlist_id,
                    "name": published.name, "track_count": published.track_count,
                    "left_out": [s.as_dict() for s in published.left_out]})


@bp.get("/chat/api/config_defaults")
def config_defaults() -> Response:
    """The instant playlist's default provider, models and server URLs (never a key)."""
    return jsonify(chat_defaults(runtime().config))


@bp.get("/chat/api/status")
def status() -> Response:
    """What the page shows beside the form: the provider in force, its models, the role, the recent AI calls."""
    rt = runtime()
    cfg = rt.config
    role = rt.chat_role
    return jsonify({
        "default_provider": cfg.AI_MODEL_PROVIDER.lower(), "providers": ["none", *PROVIDERS],
        "models": {p: default_model(cfg, p) for p in PROVIDERS},
        "ollama_server_url": cfg.OLLAMA_SERVER_URL,
        "role": {"name": role.name, "ready": role.ready, "problem": role.problem,
                 "operator_sql": None if role.ready else role.operator_sql} if role else None,
        "max_results": cfg.ALCHEMY_MAX_N_RESULTS, "calls": rt.chat_calls.recent()})
