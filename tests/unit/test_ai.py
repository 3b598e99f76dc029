"""ai.py against a real local HTTP server: each provider's wire format, failures as AIError without the API key,
the playlist-name sanitiser on hostile answers, and name_playlist falling back instead of raising."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from ai import (
    AIError,
    ai_enabled,
    complete,
    name_playlist,
    playlist_name_prompt,
    sanitize_playlist_name,
)
from config import Config
from tests.fakes.llm import FakeLLM

KEYS = {"openai": "sk-openai-ZQX7-distinctive-4411", "gemini": "AIza-gemini-ZQX7-distinctive-5522",
        "mistral": "mistral-ZQX7-distinctive-6633"}
ALL_PROVIDERS = ("ollama", "openai", "gemini", "mistral")


def make_config(provider: str, url: str, **extra: Any) -> Config:
    """Every provider pointed at `url` (with the usual path prefixes), with distinctive keys."""
    values: dict[str, Any] = {
        "AI_MODEL_PROVIDER": provider, "AI_REQUEST_TIMEOUT_SECONDS": 5,
        "OLLAMA_SERVER_URL": url, "OLLAMA_MODEL_NAME": "llama-test:8b",
        "OPENAI_SERVER_URL": f"{url}/v1", "OPENAI_MODEL_NAME": "gpt-test", "OPENAI_API_KEY": KEYS["openai"],
        "GEMINI_SERVER_URL": f"{url}/v1beta", "GEMINI_MODEL_NAME": "gemini-test-flash",
        "GEMINI_API_KEY": KEYS["gemini"],
        "MISTRAL_SERVER_URL": f"{url}/v1", "MISTRAL_MODEL_NAME": "mistral-test", "MISTRAL_API_KEY": KEYS["mistral"],
    }
    values.update(extra)
    return Config.from_env({}).with_overrides(**values)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


NAMING: dict[str, Any] = {"top_tags": ["synthwave", "electronic", "80s"], "moods": ["energetic", "dark"],
          "tempo_range": (110.0, 128.0), "sample_songs": [("Nightcall", "Kavinsky"), ("Turbo Killer", "Carpenter")],
          "taken_names": ["Retro Night Drive_automatic", "Neon Dreams Forever"]}


# --- wire formats ----------------------------------------------------------------------------------------------
def test_ollama_request_and_answer(llm: FakeLLM) -> None:
    llm.answer = "  Midnight Neon Highway\n"
    assert complete(make_config("ollama", llm.url), "name it") == "Midnight Neon Highway"
    req = llm.last
    assert req.path == "/api/generate"
    assert req.body["model"] == "llama-test:8b" and req.body["prompt"] == "name it" and req.body["stream"] is False
    assert "authorization" not in req.headers


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-test"), ("mistral", "mistral-test")])
def test_chat_completions_request_and_answer(llm: FakeLLM, provider: str, model: str) -> None:
    assert complete(make_config(provider, llm.url), "name it") == "Midnight Neon Highway"
    req = llm.last
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == model
    assert req.body["messages"] == [{"role": "user", "content": "name it"}]
    assert isinstance(req.body["temperature"], float)
    assert req.headers["authorization"] == f"Bearer {KEYS[provider]}"
    assert KEYS[provider] not in req.path


def test_openai_compatible_server_without_key_gets_no_auth_header(llm: FakeLLM) -> None:
    complete(make_config("openai", llm.url, OPENAI_API_KEY=""), "name it")
    assert "authorization" not in llm.last.headers


def test_gemini_request_sends_key_in_header_not_url(llm: FakeLLM) -> None:
    assert complete(make_config("gemini", llm.url), "name it") == "Midnight Neon Highway"
    req = llm.last
    assert req.path == "/v1beta/models/gemini-test-flash:generateContent"
    assert req.headers["x-goog-api-key"] == KEYS["gemini"]
    assert "key=" not in req.path and KEYS["gemini"] not in req.path
    assert req.body["contents"][0]["parts"] == [{"text": "name it"}]


def test_server_urls_given_as_full_endpoints_are_accepted(llm: FakeLLM) -> None:
    complete(make_config("ollama", llm.url, OLLAMA_SERVER_URL=f"{llm.url}/api/generate"), "p")
    complete(make_config("openai", llm.url, OPENAI_SERVER_URL=f"{llm.url}/v1/chat/completions/"), "p")
    assert [r.path for r in llm.requests] == ["/api/generate", "/v1/chat/completions"]


def test_gemini_joins_text_parts(llm: FakeLLM) -> None:
    llm.body = {"candidates": [{"content": {"parts": [{"text": "Midnight "}, {"text": "Neon Highway"}]}}]}
    assert complete(make_config("gemini", llm.url), "p") == "Midnight Neon Highway"


def test_provider_and_model_arguments_override_config(llm: FakeLLM) -> None:
    config = make_config("ollama", llm.url)
    complete(config, "p", provider="Mistral", model="mistral-large")
    assert llm.last.path == "/v1/chat/completions" and llm.last.body["model"] == "mistral-large"


def test_no_provider_and_unknown_provider_raise(llm: FakeLLM) -> None:
    config = make_config("none", llm.url)
    assert not ai_enabled(config) and ai_enabled(make_config("ollama", llm.url))
    with pytest.raises(AIError, match="no AI provider configured"):
        complete(config, "p")
    with pytest.raises(AIError, match="unknown AI provider 'claude'"):
        complete(config, "p", provider="claude")
    assert llm.requests == []


# --- failures ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ALL_PROVIDERS)
def test_http_error_names_provider_status_and_server_message_without_key(llm: FakeLLM, provider: str) -> None:
    llm.status = 401
    llm.error_message = f"Incorrect API key provided: {KEYS.get(provider, 'none')}. Check your key."
    with pytest.raises(AIError) as err:
        complete(make_config(provider, llm.url), "p")
    message = str(err.value)
    assert message.startswith(f"{provider}: HTTP 401 from http://127.0.0.1:")
    assert "Incorrect API key provided" in message and "Check your key" in message
    assert all(key not in message for key in KEYS.values())
    assert "\n" not in message


def test_long_server_message_is_trimmed(llm: FakeLLM) -> None:
    llm.status = 500
    llm.error_message = "x" * 185 + KEYS["openai"] + " overloaded" * 100  # the key straddles the cut
    with pytest.raises(AIError) as err:
        complete(make_config("openai", llm.url), "p")
    assert "HTTP 500" in str(err.value) and "x***" in str(err.value)
    assert len(str(err.value)) < 300
    assert KEYS["openai"][:10] not in str(err.value)


def test_malformed_json_raises(llm: FakeLLM) -> None:
    llm.malformed = True
    with pytest.raises(AIError, match=r"^ollama: the answer from .* is not valid JSON$"):
        complete(make_config("ollama", llm.url), "p")


@pytest.mark.parametrize(("provider", "body", "missing"), [
    ("ollama", {"done": True}, "response"),
    ("openai", {"choices": []}, "choices[0]"),
    ("mistral", {"choices": [{"message": {"role": "assistant"}}]}, "choices[0].message.content"),
    ("gemini", {"promptFeedback": {"blockReason": "SAFETY"}}, "candidates (prompt blocked: SAFETY)"),
    ("gemini", {"candidates": [{"finishReason": "SAFETY"}]}, "candidates[0].content"),
])
def test_answer_without_expected_fields_raises(llm: FakeLLM, provider: str, body: dict[str, Any],
                                               missing: str) -> None:
    llm.body = body
    with pytest.raises(AIError) as err:
        complete(make_config(provider, llm.url), "p")
    assert str(err.value).startswith(f"{provider}: ") and str(err.value).endswith(f"has no {missing}")


def test_connection_refused_raises() -> None:
    url = closed_port_url()
    with pytest.raises(AIError, match=r"^openai: cannot connect to http://127\.0\.0\.1:\d+/v1/chat/completions "
                                      r"\(Connection refused\)$"):
        complete(make_config("openai", url), "p")


def test_timeout_raises(llm: FakeLLM) -> None:
    llm.delay_seconds = 3
    with pytest.raises(AIError, match=r"^gemini: no answer from .* within 1 s$"):
        complete(make_config("gemini", llm.url, AI_REQUEST_TIMEOUT_SECONDS=1), "p")


def test_key_in_configured_url_is_redacted() -> None:
    url = closed_port_url()
    config = make_config("gemini", url, GEMINI_SERVER_URL=f"{url}/v1beta?key=AIza-inline-secret-9988")
    with pytest.raises(AIError) as err:
        complete(config, "p")
    assert "AIza-inline-secret-9988" not in str(err.value) and "key=***" in str(err.value)
    assert "AIza-inline-secret-9988" not in "".join(traceback.format_exception(err.value))


# --- sanitiser -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("answer", "expected"), [
    ("Midnight Neon Highway", "Midnight Neon Highway"),
    ("```\nMidnight Neon Highway\n```", "Midnight Neon Highway"),
    ("```text\n**Midnight Neon Highway**\n```", "Midnight Neon Highway"),
    ("**Midnight Neon Highway**", "Midnight Neon Highway"),
    ("_Midnight Neon Highway_", "Midnight Neon Highway"),
    ("# Midnight Neon Highway", "Midnight Neon Highway"),
    ("- Midnight Neon Highway\n- Second Choice Here", "Midnight Neon Highway"),
    ('"Midnight Neon Highway"', "Midnight Neon Highway"),
    ("“Midnight Neon Highway”", "Midnight Neon Highway"),
    ("Playlist name: Midnight Neon Highway", "Midnight Neon Highway"),
    ("**Name:** Midnight Neon Highway", "Midnight Neon Highway"),
    ("Here is a name for your playlist:\n\nMidnight Neon Highway", "Midnight Neon Highway"),
    ('Sure! How about "Midnight Neon Highway"? It fits.', "Midnight Neon Highway"),
    ("🌃 Midnight Neon Highway 🚗💨", "Midnight Neon Highway"),
    ("Café Nöir Grooves", "Cafe Noir Grooves"),
    ("Drum & Bass Midnight", "Drum and Bass Midnight"),
    ("Sunday's Slow Morning", "Sundays Slow Morning"),
    ("Midnight Neon Highway_automatic", "Midnight Neon Highway"),
    ("Midnight Neon Highway automatic", "Midnight Neon Highway"),
    ("Rock_Fast_Aggressive_Mix", "Rock_Fast_Aggressive_Mix"),
    ("\n\n   Midnight   Neon\tHighway  \n", "Midnight Neon Highway"),
])
def test_sanitizer_cleans_answers(answer: str, expected: str) -> None:
    assert sanitize_playlist_name(answer) == expected


@pytest.mark.parametrize("answer", [
    "", "   \n  ", "Rock", "🎸🔥🎶", "```\n```",
    "DROP TABLE playlists;--",
    "Robert'); drop table students; --",
    "SELECT name FROM playlists WHERE 1=1",
    "Midnight Drive; DELETE FROM score",
    "I'm sorry, but I can't help with naming this playlist.",
    "As an AI language model, I do not have personal taste.",
    "<script>alert(1)</script> Midnight Neon Highway",
    "Here is a name:",
])
def test_sanitizer_rejects_unusable_answers(answer: str) -> None:
    assert sanitize_playlist_name(answer) is None


def test_sanitizer_truncates_long_answer_at_word_boundary() -> None:
    words = "Velvet Midnight Highway Beneath Neon Rain And Distant Thunder Rolling Slowly Over Empty Streets " * 3
    answer = words[:200]
    name = sanitize_playlist_name(answer)
    assert name is not None and 15 <= len(name) <= 35
    assert answer.startswith(name + " ")  # ends on a whole word
    assert name == "Velvet Midnight Highway Beneath"  # a hard cut would end in "Neo"


def test_sanitizer_cuts_one_long_word_hard() -> None:
    assert sanitize_playlist_name("A" * 80) == "A" * 35


def test_sanitized_names_use_only_safe_characters() -> None:
    hostile = "**Ñight Rïde — 東京 / 50% <b>Vibes</b>!!! `code` \\ $(rm -rf) {x: 1} ✨**"
    name = sanitize_playlist_name(hostile)
    assert name is not None
    assert all(c.isascii() and (c.isalnum() or c in " -_") for c in name), name
    assert len(name) <= 35 and not name.lower().endswith("automatic")


# --- prompt --------------------------------------------------------------------------------------------------
def test_prompt_carries_features_examples_rules_and_taken_names() -> None:
    songs = [(f"Title {i}", f"Artist {i}") for i in range(12)]
    prompt = playlist_name_prompt(top_tags=["synthwave", "electronic"], moods=["dark"], tempo_range=(128.4, 96.2),
                                  sample_songs=songs, taken_names=["Neon Dreams Forever"])
    assert "synthwave, electronic" in prompt and "dark" in prompt
    assert "96 to 128 BPM" in prompt
    assert "Title 0 – Artist 0" in prompt and "Title 7 – Artist 7" in prompt and "Title 8" not in prompt
    assert "15 to 35 characters" in prompt and "Neon Dreams Forever" in prompt
    assert "no emoji" in prompt.lower() and "markdown" in prompt.lower()


# --- name_playlist -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ALL_PROVIDERS)
def test_name_playlist_uses_the_ai_name(llm: FakeLLM, provider: str) -> None:
    llm.answer = "**Chrome Hearts After Dark** 🌃"
    assert name_playlist(make_config(provider, llm.url), **NAMING, fallback="Synthwave_Fast") == \
        ("Chrome Hearts After Dark", "ai")
    sent = llm.last.body
    prompt = sent.get("prompt") or sent.get("messages", [{}])[0].get("content") or \
        sent["contents"][0]["parts"][0]["text"]
    assert "Nightcall – Kavinsky" in prompt and "Neon Dreams Forever" in prompt


def test_name_playlist_without_provider_makes_no_request(llm: FakeLLM) -> None:
    assert name_playlist(make_config("none", llm.url), **NAMING, fallback="Synthwave_Fast") == \
        ("Synthwave_Fast", "fallback")
    assert llm.requests == []


@pytest.mark.parametrize("answer", ["neon dreams FOREVER", "Retro Night Drive", "DROP TABLE playlists;--", "",
                                    "I'm sorry, I cannot help with that."])
def test_name_playlist_falls_back_on_unusable_or_taken_answer(llm: FakeLLM, answer: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    llm.answer = answer
    with caplog.at_level(logging.WARNING, logger="ai"):
        assert name_playlist(make_config("openai", llm.url), **NAMING, fallback="Synthwave_Fast") == \
            ("Synthwave_Fast", "fallback")
    assert len(llm.requests) == 1 and "Synthwave_Fast" in caplog.text


FAILURES = ["http500", "refused", "timeout", "malformed"]


def _fail(llm: FakeLLM, failure: str, provider: str) -> Config:
    url = llm.url
    if failure == "http500":
        llm.status = 500
        llm.error_message = f"internal error while checking key {KEYS.get(provider, '')}"
    elif failure == "refused":
        url = closed_port_url()
    elif failure == "timeout":
        llm.delay_seconds = 3
    else:
        llm.malformed = True
    return make_config(provider, url, AI_REQUEST_TIMEOUT_SECONDS=1)


@pytest.mark.parametrize("failure", FAILURES)
def test_name_playlist_falls_back_on_provider_failure(llm: FakeLLM, failure: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    config = _fail(llm, failure, "mistral")
    # a server that is down or silent is "unreachable" (callers stop asking); one that answers badly is not
    how = "unreachable" if failure in ("refused", "timeout") else "fallback"
    with caplog.at_level(logging.WARNING, logger="ai"):
        assert name_playlist(config, **NAMING, fallback="Synthwave_Fast") == ("Synthwave_Fast", how)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "mistral: " in caplog.text


@pytest.mark.parametrize("provider", ["openai", "gemini", "mistral"])
@pytest.mark.parametrize("failure", FAILURES)
def test_api_key_never_reaches_errors_or_logs(llm: FakeLLM, provider: str, failure: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    config = _fail(llm, failure, provider)
    key = KEYS[provider]
    caplog.set_level(logging.DEBUG)  # urllib3 logs request lines at DEBUG: the URL must not carry the key
    with pytest.raises(AIError) as err:
        complete(config, "p")
    assert key not in str(err.value) and key not in repr(err.value)
    assert key not in "".join(traceback.format_exception(err.value))  # chained exceptions included
    name_playlist(config, **NAMING, fallback="Synthwave_Fast")
    assert caplog.records, "expected the failure to be logged"
    for record in caplog.records:
        assert key not in record.getMessage()
    assert key not in caplog.text
