"""A small LLM server for ai.py tests, speaking the Ollama, OpenAI/Mistral and Gemini wire formats.

POST `/api/generate` answers like Ollama (`{"response": ...}`), POST `.../chat/completions` like OpenAI and
Mistral (`choices[0].message.content`), POST `.../models/{model}:generateContent` like Gemini
(`candidates[0].content.parts[].text`); any prefix before those paths (`/v1`, `/v1beta`) is accepted. Every
answer carries `answer` as the model's text. Switches: `status` answers that HTTP status with a provider-shaped
error body carrying `error_message`, `malformed` answers broken JSON, `body` answers that JSON object as it is,
`delay_seconds` waits before answering. Every request is recorded in `requests` (path, headers, JSON body).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.server import BackgroundServer

_GEMINI_PATH = re.compile(r"/models/([^/:]+):generateContent$")


@dataclass(frozen=True)
class Recorded:
    path: str  # with the query string, as sent
    headers: dict[str, str]  # names lower-cased
    body: Any


class FakeLLM(BackgroundServer):
    """Start with `with FakeLLM(answer=...) as llm:`; `llm.url` is the base URL (no trailing slash)."""

    def __init__(self, *, answer: str = "Midnight Neon Highway") -> None:
        self.answer = answer
        self.status: int | None = None
        self.error_message = "something went wrong"
        self.malformed = False
        self.body: Any = None
        self.page: bytes | None = None  # answered as a 404 HTML page: some internal server's, not an LLM's
        self.raw: bytes | None = None  # answered as it is, status 200
        self.delay_seconds = 0.0
        self.requests: list[Recorded] = []
        super().__init__(self._handler_class(), name="fake-llm")

    @property
    def last(self) -> Recorded:
        assert self.requests, "the fake LLM got no request"
        return self.requests[-1]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                length = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, self.rfile.read(length) if length else b"")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def _handle(self, request: BaseHTTPRequestHandler, raw: bytes) -> None:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(Recorded(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)
        status, payload = self._answer(urlsplit(request.path).path, body)
        try:
            request.send_response(status)
            request.send_header("Content-Type", "text/html" if self.page is not None else "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def _answer(self, path: str, body: Any) -> tuple[int, bytes]:
        if self.page is not None:
            return 404, self.page
        if self.raw is not None:
            return 200, self.raw
        if self.status:
            error = {"message": self.error_message, "type": "invalid_request_error", "code": self.status}
            return self.status, json.dumps({"error": error}).encode()
        if self.malformed:
            return 200, b'{"response": "Midnight Neon Highway", "choices": [{'
        if self.body is not None:
            return 200, json.dumps(self.body).encode()
        if not isinstance(body, dict):
            return 400, json.dumps({"error": {"message": "the body is not a JSON object"}}).encode()
        gemini = _GEMINI_PATH.search(path)
        if path.endswith("/api/generate"):
            answer: dict[str, Any] = {"model": body.get("model"), "created_at": "2024-01-01T00:00:00Z",
                                      "response": self.answer, "done": True, "done_reason": "stop"}
        elif path.endswith("/chat/completions"):
            answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1704067200,
                      "model": body.get("model"),
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": self.answer}}],
                      "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        elif gemini:
            answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": self.answer}]},
                                      "finishReason": "STOP", "index": 0}],
                      "modelVersion": unquote(gemini.group(1))}
        else:
            return 404, json.dumps({"error": {"message": f"no route for {path}"}}).encode()
        return 200, json.dumps(answer).encode()
