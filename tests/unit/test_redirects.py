"""Tokens never follow a redirect to another host: a media server (or an LLM API) that answers 302 to elsewhere
gets its own request on, the other host gets none of the credentials."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from tests.fakes.server import BackgroundServer


class Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        body = json.dumps({"Items": [], "candidates": [{"content": {"parts": [{"text": "ok"}]}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815


class Redirector(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _redirect(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        self.send_response(307)  # keeps the method and body, as a hostile server would want
        self.send_header("Location", self.server.target + self.path)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect  # noqa: N815


class Server(BackgroundServer):
    def __init__(self, handler: type[BaseHTTPRequestHandler], target: str = "") -> None:
        super().__init__(handler, name="redirect-fake")
        self.seen: list[dict[str, str]] = []
        self._httpd.seen = self.seen  # type: ignore[attr-defined]
        self._httpd.target = target  # type: ignore[attr-defined]


@pytest.fixture
def elsewhere():
    with Server(Recorder) as other:
        # the same machine under another name: another host for the redirect rules
        with Server(Redirector, target=other.url.replace("127.0.0.1", "localhost")) as first:
            yield first, other


def test_jellyfin_token_is_not_sent_to_the_host_a_redirect_names(elsewhere):
    from mediaservers.jellyfin import Jellyfin

    first, other = elsewhere
    server = Jellyfin(first.url, token="jf-secret-token", user="0123456789abcdef0123456789abcdef")
    server.list_libraries()
    assert first.seen and first.seen[0].get("X-Emby-Token") == "jf-secret-token"
    assert other.seen, "the redirect was followed"
    assert all("jf-secret-token" not in json.dumps(headers) for headers in other.seen)


def test_gemini_key_is_not_sent_to_the_host_a_redirect_names(elsewhere):
    import ai
    from config import Config

    first, other = elsewhere
    cfg = Config.from_mapping({"AI_MODEL_PROVIDER": "gemini", "GEMINI_SERVER_URL": first.url,
                               "GEMINI_API_KEY": "gem-secret-key"})
    assert ai.complete(cfg, "name this playlist") == "ok"
    assert first.seen[0].get("x-goog-api-key") == "gem-secret-key"
    assert other.seen and all("gem-secret-key" not in json.dumps(headers) for headers in other.seen)


def test_a_redirect_to_another_port_drops_the_token_too():
    from mediaservers.jellyfin import Jellyfin

    with Server(Recorder) as other, Server(Redirector, target=other.url) as first:
        Jellyfin(first.url, token="jf-secret-token", user="0123456789abcdef0123456789abcdef").list_libraries()
        # same machine, another port: another origin, so the token stays behind
        assert other.seen and "X-Emby-Token" not in other.seen[0]
