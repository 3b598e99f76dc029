"""LLM providers behind one call, and AI playlist naming.

`complete(config, prompt)` sends one prompt to the provider chosen by AI_MODEL_PROVIDER and returns the model's
text: Ollama (`POST /api/generate`), any OpenAI-compatible server (`POST /chat/completions`: OpenAI, LM Studio,
llama.cpp, vLLM), Google Gemini (`POST /models/{model}:generateContent`) or Mistral (`POST /chat/completions`).
Every failure (provider "none", no connection, timeout, HTTP error, an answer without the expected fields) is an
`AIError` with a one-line message naming the provider and the cause. API keys travel only in headers and are
redacted from every message, so an AIError can be logged or shown as it is.

`name_playlist` asks for a playlist name, cleans the answer with `sanitize_playlist_name` and returns the caller's
fallback name instead of raising when AI is off, the provider fails, or the answer is unusable.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from config import AI_PROVIDERS, Config, redact_url
from infra.safe_http import CredentialSafeSession

log = logging.getLogger(__name__)

PROVIDERS = AI_PROVIDERS  # listed once, in config.py
NAME_MIN_LENGTH = 15
NAME_MAX_LENGTH = 35
DEFAULT_TEMPERATURE = 0.7
MESSAGE_LIMIT = 200  # characters of a server's error message kept in an AIError
PROMPT_SONGS = 8
PROMPT_TAKEN_NAMES = 40  # the prompt lists this many; name_playlist still checks every taken name


class AIError(RuntimeError):
    """An LLM request failed. The message is one line, names the provider and never contains an API key.
    `unreachable` is True when the server could not be reached or did not answer in time."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


KEYED_PROVIDERS = ("gemini", "mistral")  # hosted only: no key, no answer


def default_model(config: Config, provider: str) -> str:
    """The model a provider uses unless a request names one (its *_MODEL_NAME setting)."""
    return str(getattr(config, f"{provider.upper()}_MODEL_NAME", ""))


def missing_key(config: Config, provider: str) -> bool:
    """Whether `provider` cannot answer for want of an API key (a local OpenAI-compatible server needs none)."""
    if provider in KEYED_PROVIDERS:
        return not getattr(config, f"{provider.upper()}_API_KEY")
    if provider == "openai":
        return not config.OPENAI_API_KEY and "api.openai.com" in config.OPENAI_SERVER_URL
    return False


def call_delay(config: Config, provider: str) -> float:
    """The least time between two calls to `provider` (its *_API_CALL_DELAY_SECONDS; 0 where it has none)."""
    return float(getattr(config, f"{provider.upper()}_API_CALL_DELAY_SECONDS", 0.0))


def ai_enabled(config: Config) -> bool:
    """Whether an AI provider is configured (AI_MODEL_PROVIDER is not "none")."""
    return config.AI_MODEL_PROVIDER.strip().lower() != "none"


def complete(config: Config, prompt: str, *, provider: str | None = None, model: str | None = None,
             temperature: float | None = DEFAULT_TEMPERATURE) -> str:
    """Send `prompt` as one user message and return the model's answer text, stripped (possibly "").

    `provider` and `model` default to AI_MODEL_PROVIDER and that provider's *_MODEL_NAME; the server URL and key
    always come from `config`. `temperature=None` leaves the provider's default (some reasoning models accept no
    other). One request, timeout AI_REQUEST_TIMEOUT_SECONDS, no retries. Raises AIError on any failure, including
    provider "none" (check `ai_enabled` first to skip the call).
    """
    name = (provider or config.AI_MODEL_PROVIDER).strip().lower()
    if name == "none":
        raise AIError("no AI provider configured (AI_MODEL_PROVIDER=none)")
    if name not in PROVIDERS:
        raise AIError(f"unknown AI provider {name!r} (expected one of: {', '.join(PROVIDERS)})")
    prefix = name.upper()
    # Older AudioMuse settings held the full endpoint; accept that as well as the documented base URL.
    base: str = getattr(config, f"{prefix}_SERVER_URL").rstrip("/").removesuffix("/api/generate") \
        .removesuffix("/chat/completions")
    model_name: str = model or default_model(config, name)
    key: str = getattr(config, f"{prefix}_API_KEY", "")
    headers: dict[str, str] = {}
    body: dict[str, Any]
    extract: Callable[[Any], str]
    if name == "ollama":
        url = f"{base}/api/generate"
        body = {"model": model_name, "prompt": prompt, "stream": False}
        if temperature is not None:
            body["options"] = {"temperature": temperature}
        extract = _ollama_text
    elif name == "gemini":
        url = f"{base}/models/{quote(model_name.removeprefix('models/'), safe='-._')}:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if temperature is not None:
            body["generationConfig"] = {"temperature": temperature}
        if key:  # a header, not ?key=, so the key stays out of URLs that requests and urllib3 log
            headers["x-goog-api-key"] = key
        extract = _gemini_text
    else:
        url = f"{base}/chat/completions"
        body = {"model": model_name, "messages": [{"role": "user", "content": prompt}]}
        if temperature is not None:
            body["temperature"] = temperature
        if key:  # local OpenAI-compatible servers take no key
            headers["Authorization"] = f"Bearer {key}"
        extract = _chat_text
    shown = _redact(redact_url(url), key)
    answer = _post(name, url, shown, body, headers=headers, timeout=config.AI_REQUEST_TIMEOUT_SECONDS, key=key)
    try:
        return extract(answer).strip()
    except _MissingField as exc:
        raise AIError(f"{name}: the answer from {shown} has no {exc}") from None


def _post(provider: str, url: str, shown: str, body: dict[str, Any], *, headers: dict[str, str], timeout: float,
          key: str) -> Any:
    """The decoded JSON answer of one POST; `shown` is the URL as it may appear in messages."""
    try:
        with CredentialSafeSession() as session:
            response = session.post(url, json=body, headers=headers, timeout=timeout)
    except requests.Timeout:
        raise AIError(f"{provider}: no answer from {shown} within {timeout:g} s", unreachable=True) from None
    except requests.ConnectionError as exc:
        raise AIError(f"{provider}: cannot connect to {shown} ({_redact(_os_cause(exc), key)})",
                      unreachable=True) from None
    except requests.RequestException as exc:
        # `from None` throughout: the chained requests exception would repeat the URL in tracebacks
        raise AIError(f"{provider}: request to {shown} failed ({type(exc).__name__})") from None
    if response.status_code >= 400:
        message = _server_message(response, key)
        raise AIError(f"{provider}: HTTP {response.status_code} from {shown}: {message}")
    try:
        return response.json()
    except ValueError:
        raise AIError(f"{provider}: the answer from {shown} is not valid JSON") from None
    except RecursionError:  # the request was fine: the LLM's answer is what cannot be read
        raise AIError(f"{provider}: the answer from {shown} is nested too deeply") from None


class _MissingField(ValueError):
    """The answer lacks a field; the message is its path, e.g. `choices[0].message.content`."""


def _dig(data: Any, *path: str | int) -> Any:
    for depth, step in enumerate(path):
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[: depth + 1]).lstrip(".")
            raise _MissingField(shown) from None
    return data


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _MissingField(f"{path} text")
    return value


def _ollama_text(body: Any) -> str:
    return _text(_dig(body, "response"), "response")


def _chat_text(body: Any) -> str:
    content = _dig(body, "choices", 0, "message", "content")
    if isinstance(content, list):  # Mistral's reasoning models answer a list of typed chunks
        return "".join(c["text"] for c in content
                       if isinstance(c, dict) and c.get("type") == "text" and isinstance(c.get("text"), str))
    return _text(content, "choices[0].message.content")


def _gemini_text(body: Any) -> str:
    if isinstance(body, dict) and not body.get("candidates"):
        feedback = body.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        raise _MissingField(f"candidates (prompt blocked: {reason})" if reason else "candidates")
    parts = _dig(body, "candidates", 0, "content", "parts")
    texts = [p["text"] for p in parts
             if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")]
    if not texts:
        raise _MissingField("candidates[0].content.parts[].text")
    return "".join(texts)


_KEY_IN_QUERY = re.compile(r"(?i)([?&](?:key|api_?key|access_token|token)=)[^&#\s]+")


def _redact(text: str, key: str) -> str:
    if key:
        text = text.replace(key, "***")
    return _KEY_IN_QUERY.sub(r"\1***", text)


def _os_cause(exc: Exception) -> str:
    """'Connection refused', 'Name or service not known'… from deep inside a requests ConnectionError."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return found[-1].strip() if found else type(exc).__name__


def _server_message(response: requests.Response, key: str) -> str:
    """The error text of a failed answer, one line, key redacted, at most MESSAGE_LIMIT characters."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    message: Any = None  # never the body itself: a page that is no LLM's error answer is not shown
    if isinstance(body, dict):
        error = body.get("error")
        # OpenAI, Mistral, Gemini: {"error": {"message"}}; Ollama: {"error": "..."}; others: message / detail
        message = (error.get("message") if isinstance(error, dict) else error) or body.get("message") \
            or body.get("detail")
    if not isinstance(message, str) or not message.strip():
        message = f"{response.reason or 'an error'} (not an error answer of an LLM API)"
    # redact before trimming, so a cut cannot leave part of the key behind
    text = " ".join(_redact(str(message), key).split()) or response.reason or "no message"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# --- playlist names ------------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[\w+.-]*")
_HEADING_OR_BULLET = re.compile(r"^(?:#+|[-*+•>]|\d+[.)])\s+")
_LABEL = re.compile(r"^(?:suggested\s+)?(?:playlist\s+)?(?:name|title)\s*[:=\-–—]\s*", re.I)
_QUOTED = re.compile(r"[\"“”«»](.+?)[\"“”«»]")
# Anything like SQL, markup or a refusal means the model went off script: the whole answer is rejected.
_OFF_SCRIPT = re.compile(
    r"\b(?:drop|truncate|alter|create)\s+(?:table|database|schema)\b|\bdelete\s+from\b|\binsert\s+into\b"
    r"|\bselect\b[^\n]*\bfrom\b|\bupdate\s+\w+\s+set\b|;\s*--|<\s*/?\s*script"
    r"|\bi(?:'|’|\s+a|)m\s+(?:sorry|unable)\b|\bas\s+an\s+ai\b|\blanguage\s+model\b"
    r"|\bi\s+(?:cannot|can'?t|can’t)\s+(?:help|assist|provide|comply|create)\b"
    r"|\bignore\s+(?:all\s+)?(?:previous|prior|above)\s+instructions\b",
    re.I)
_AUTOMATIC_SUFFIX = re.compile(r"[\s_-]*automatic$", re.I)


def sanitize_playlist_name(text: str) -> str | None:
    """A safe playlist name from a model's answer, or None when the answer gives none.

    Takes the first non-empty line (after dropping Markdown fences, headings, bullets, **bold**, a "Name:" label
    and a preamble line ending in ':'; a "quoted" part of the line wins), folds it to ASCII (Café → Cafe, emoji
    dropped, & → and), keeps letters, digits, spaces, '-' and '_', and cuts it to NAME_MAX_LENGTH characters at a
    word boundary where possible. The result never ends with "automatic" (callers append "_automatic"). None
    when it is shorter than NAME_MIN_LENGTH or the answer looks like SQL, markup or a refusal.
    """
    if not text or _OFF_SCRIPT.search(text):
        return None
    for raw in _FENCE.sub("\n", text).splitlines():
        line = _HEADING_OR_BULLET.sub("", raw.replace("**", "").replace("__", "").strip())
        line = _LABEL.sub("", line).strip()
        if not line.strip("`*_\"'“”‘’ "):
            continue
        quoted = _QUOTED.search(line)
        if quoted:
            line = quoted.group(1)
        elif line.endswith(":"):  # "Here is a name:" announces the answer on the next line
            continue
        return _clean_name(line)
    return None


def _clean_name(line: str) -> str | None:
    line = line.replace("&", " and ").replace("–", "-").replace("—", "-")
    line = re.sub(r"['’‘`]", "", line)  # "Sunday's" → "Sundays", not "Sunday s"
    ascii_text = unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode("ascii")
    name = " ".join(re.sub(r"[^A-Za-z0-9 _-]+", " ", ascii_text).split()).strip(" -_")
    if len(name) > NAME_MAX_LENGTH:
        cut = name.rfind(" ", 0, NAME_MAX_LENGTH + 1)
        name = name[:cut] if cut >= NAME_MIN_LENGTH else name[:NAME_MAX_LENGTH]
    while _AUTOMATIC_SUFFIX.search(name):
        name = _AUTOMATIC_SUFFIX.sub("", name)
    name = name.strip(" -_")
    return name if len(name) >= NAME_MIN_LENGTH else None


def playlist_name_prompt(*, top_tags: Sequence[str], moods: Sequence[str], tempo_range: tuple[float, float],
                         sample_songs: Sequence[tuple[str, str]], taken_names: Sequence[str]) -> str:
    """The naming prompt: tags, moods, tempo range (BPM), up to PROMPT_SONGS (title, artist) pairs, format rules."""
    def one_line(value: str) -> str:
        return " ".join(value.split())[:80]

    low, high = sorted(tempo_range)
    lines = [
        "You name music playlists. Suggest one name for a playlist with these features.",
        f"Top genres and tags: {', '.join(one_line(t) for t in top_tags) or 'unknown'}",
        f"Moods: {', '.join(one_line(m) for m in moods) or 'unknown'}",
        f"Tempo: {low:.0f} to {high:.0f} BPM",
    ]
    if sample_songs:
        lines.append("Some songs in it:")
        lines += [f"- {one_line(title)} – {one_line(artist)}" for title, artist in sample_songs[:PROMPT_SONGS]]
    lines += [
        "",
        "Rules:",
        "- Answer with the name only, on a single line, and nothing else: no commentary or explanation.",
        f"- {NAME_MIN_LENGTH} to {NAME_MAX_LENGTH} characters: plain ASCII letters, digits, spaces and hyphens.",
        "- No quotes, no Markdown, no emoji, no punctuation at the end.",
        "- Evoke the mood and style of the music rather than listing the genres.",
    ]
    if taken_names:
        lines.append("- Do not use any of these existing names: "
                     + "; ".join(one_line(n) for n in taken_names[:PROMPT_TAKEN_NAMES]))
    return "\n".join(lines)


def name_playlist(config: Config, *, top_tags: Sequence[str], moods: Sequence[str],
                  tempo_range: tuple[float, float], sample_songs: Sequence[tuple[str, str]],
                  taken_names: Sequence[str], fallback: str) -> tuple[str, str]:
    """(name, how): the AI's name and "ai", or (`fallback`, "fallback") when AI is off, the provider fails, the
    answer sanitises to nothing, or it repeats one of `taken_names` (case-insensitive, "_automatic" ignored);
    how is "unreachable" when the provider could not be reached or timed out (callers stop asking).
    Never raises AIError; failures are logged as warnings (messages carry no API key)."""
    if not ai_enabled(config):
        log.debug("AI naming is off (AI_MODEL_PROVIDER=none); using %r", fallback)
        return fallback, "fallback"
    prompt = playlist_name_prompt(top_tags=top_tags, moods=moods, tempo_range=tempo_range,
                                  sample_songs=sample_songs, taken_names=taken_names)
    try:
        answer = complete(config, prompt)
    except AIError as exc:
        log.warning("AI playlist name failed, using %r: %s", fallback, exc)
        return fallback, "unreachable" if exc.unreachable else "fallback"
    name = sanitize_playlist_name(answer)
    if name is None:
        log.warning("AI answer %r is not a usable playlist name; using %r", answer[:100], fallback)
        return fallback, "fallback"
    taken = {t.strip().lower() for t in taken_names}
    taken |= {t.removesuffix("_automatic") for t in taken}
    if name.lower() in taken:
        log.warning("AI playlist name %r is already taken; using %r", name, fallback)
        return fallback, "fallback"
    return name, "ai"
