"""Audio downloads are bounded: a server that trickles, one that never ends its body and one that announces too
much are stopped with a clear cause, and no partial file is left in TEMP_DIR."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from mediaserver import MediaServerError
from mediaservers.http import MB, DownloadLimits, HttpClient
from tests.fakes.server import BackgroundServer


class Handler(BaseHTTPRequestHandler):
    stopping = None

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        if self.path == "/endless":
            self.end_headers()
            block = b"\0" * 65536
            try:
                while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(block)
            except OSError:
                return
        elif self.path == "/trickle":
            self.end_headers()
            try:
                while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        elif self.path == "/huge":
            self.send_header("Content-Length", str(50 * 1024 * MB))
            self.end_headers()
        else:
            body = b"RIFF" + b"\0" * 4000
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class Server(BackgroundServer):
    def __init__(self) -> None:
        super().__init__(Handler, name="download-fake")
        self._httpd.stopping = self._stopping  # type: ignore[attr-defined]


@pytest.fixture
def server():
    with Server() as running:
        yield running


def client(url: str, **limits: float) -> HttpClient:
    return HttpClient("Fake", url, timeout=5, retries=0, download_limits=DownloadLimits(**limits))


def test_an_endless_body_is_cut_at_the_cap_for_the_tracks_length(server, tmp_path: Path):
    http = client(server.url, max_bytes=64 * MB, bytes_per_audio_second=100_000, slack_bytes=MB)
    with pytest.raises(MediaServerError, match="stopped at 3 MB"):
        http.download("/endless", tmp_path / "a.flac", expected_seconds=20)  # 20 s × 100 kB/s + 1 MB
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MediaServerError, match="stopped at 8 MB"):  # length unknown: the absolute maximum
        client(server.url, max_bytes=8 * MB).download("/endless", tmp_path / "b.flac")
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_server_meets_the_deadline(server, tmp_path: Path):
    started = time.monotonic()
    with pytest.raises(MediaServerError, match="stopped after 1.5 s"):
        client(server.url, seconds=1.5).download("/trickle", tmp_path / "c.flac", expected_seconds=200)
    assert time.monotonic() - started < 5 and list(tmp_path.iterdir()) == []


def test_an_announced_size_beyond_the_cap_is_refused_before_reading(server, tmp_path: Path):
    with pytest.raises(MediaServerError, match="offers 51200 MB"):
        client(server.url).download("/huge", tmp_path / "d.flac", expected_seconds=300)
    assert list(tmp_path.iterdir()) == []


def test_a_normal_download_arrives_whole(server, tmp_path: Path):
    target = client(server.url).download("/song", tmp_path / "e.wav", expected_seconds=1)
    assert target.read_bytes().startswith(b"RIFF") and target.stat().st_size == 4004
    assert DownloadLimits().cap(300) == 300 * 2_000_000 + 16 * MB and DownloadLimits().cap(None) == 2048 * MB


def test_every_downloading_adapter_takes_its_limits_from_the_settings():
    from config import Config
    from mediaservers.emby import Emby
    from mediaservers.jellyfin import Jellyfin
    from mediaservers.lyrion import Lyrion
    from mediaservers.navidrome import Navidrome

    cfg = Config.from_mapping({"DOWNLOAD_MAX_MB": 5, "DOWNLOAD_TIMEOUT_SECONDS": 42, "JELLYFIN_URL": "http://j",
                               "EMBY_URL": "http://e", "NAVIDROME_URL": "http://n", "NAVIDROME_USER": "u",
                               "LYRION_URL": "http://l"})
    clients = [Jellyfin.from_config(cfg).http, Emby.from_config(cfg).http, Navidrome.from_config(cfg)._http,
               Lyrion.from_config(cfg).http]
    clients.append(Jellyfin.from_config(cfg).as_user(__import__("mediaserver").UserCredentials("a", "b")).http)
    assert {(c.download_limits.max_bytes, c.download_limits.seconds) for c in clients} == {(5 * MB, 42.0)}
