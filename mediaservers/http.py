"""One HTTP client for every media-server adapter: explicit timeouts, retries with backoff on transient errors,
and every failure turned into a MediaServerError with a one-line cause the user can act on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from infra.logs import redact
from infra.safe_http import CredentialSafeSession
from mediaservers.base import AudioStream, MediaServerError

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
MB = 1024 * 1024


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one audio download: a byte cap from the track's length at a generous bitrate (16 Mbit/s, above
    24-bit/192 kHz stereo FLAC) plus slack, never above `max_bytes`; and a wall-clock deadline, so a server that
    trickles or never ends the body can neither keep a worker nor fill TEMP_DIR."""

    max_bytes: int = 2048 * MB
    seconds: float = 900.0
    bytes_per_audio_second: int = 2_000_000
    slack_bytes: int = 16 * MB

    @classmethod
    def from_config(cls, config: Any) -> DownloadLimits:
        return cls(max_bytes=int(config.DOWNLOAD_MAX_MB) * MB, seconds=float(config.DOWNLOAD_TIMEOUT_SECONDS))

    def cap(self, duration_seconds: float | None) -> int:
        if not duration_seconds or duration_seconds <= 0:
            return self.max_bytes
        return min(self.max_bytes, int(duration_seconds * self.bytes_per_audio_second) + self.slack_bytes)


class HttpClient:
    def __init__(self, server: str, base_url: str, *, timeout: float, retries: int,
                 headers: dict[str, str] | None = None, backoff: float = 0.5,
                 download_limits: DownloadLimits | None = None) -> None:
        if not base_url:
            raise MediaServerError(f"no {server} URL configured")
        self.server = server
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.download_limits = download_limits or DownloadLimits()
        # Connection failures are retried for every request (nothing reached the server); read errors and 5xx
        # answers only for idempotent ones, so a POST that created a playlist is never sent twice.
        self.session = self._session(Retry(
            total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
            status_forcelist=TRANSIENT_STATUSES, allowed_methods=None, raise_on_status=False,
            respect_retry_after_header=True))
        self._unsafe_session = self._session(Retry(
            total=retries, connect=retries, read=0, status=0, other=0, backoff_factor=backoff,
            allowed_methods=None, raise_on_status=False))
        for session in (self.session, self._unsafe_session):
            session.headers.update({"Accept": "application/json", "User-Agent": "AudioMuse"})
            session.headers.update(headers or {})

    @staticmethod
    def _session(retry: Retry) -> requests.Session:
        session = CredentialSafeSession()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def request(self, method: str, path: str, *, stream: bool = False, idempotent: bool | None = None,
                **kwargs: Any) -> requests.Response:
        """One request; `idempotent` (default: GET/HEAD/PUT/DELETE/OPTIONS) decides whether a read error or a
        5xx answer may be retried (JSON-RPC reads over POST pass True)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        session = self.session if idempotent else self._unsafe_session
        try:
            response = session.request(method, url, timeout=self.timeout, stream=stream, **kwargs)
        except requests.exceptions.RetryError as exc:
            raise MediaServerError(f"{self.server} at {self.base_url} kept failing: {_reason(exc)}",
                                   cause="the server kept failing (HTTP 5xx)") from None
        except requests.exceptions.Timeout:
            raise MediaServerError(f"{self.server} at {self.base_url} did not answer within {self.timeout:g} s",
                                   cause="timed out") from None
        except requests.exceptions.ConnectionError as exc:
            # urllib3's retries report a stalled answer as a connection error; say what really happened.
            cause = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                raise MediaServerError(
                    f"{self.server} at {self.base_url} did not answer within {self.timeout:g} s",
                    cause="timed out") from None
            reason = _reason(exc)
            raise MediaServerError(f"cannot reach {self.server} at {self.base_url}: {reason}",
                                   cause=reason if reason in _KNOWN_REASONS else "cannot connect") from None
        except requests.exceptions.RequestException as exc:
            raise MediaServerError(f"{self.server} request failed: {_reason(exc)}",
                                   cause="the request failed") from None
        if response.status_code in (401, 403):
            raise MediaServerError(f"{self.server} refused the credentials (HTTP {response.status_code})",
                                   cause=f"HTTP {response.status_code}: credentials refused")
        if response.status_code == 404:
            raise MediaServerError(f"{self.server} has no {path.split('?')[0]} (HTTP 404)",
                                   cause=f"HTTP 404: not a {self.server} server, or not its URL")
        if response.status_code >= 400:
            raise MediaServerError(f"{self.server} answered HTTP {response.status_code}: {_body_message(response)}",
                                   cause=f"HTTP {response.status_code}")
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise MediaServerError(f"{self.server} sent something that is not JSON for {path}",
                                   cause=f"not a {self.server} server (its answer is not JSON)") from None

    def post_json(self, path: str, *, idempotent: bool = False, **kwargs: Any) -> Any:
        response = self.request("POST", path, idempotent=idempotent, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def download(self, path: str, target: Path, *, expected_seconds: float | None = None, **kwargs: Any) -> Path:
        """Stream a response body to `target` (written to a temporary name first, so no half file remains), within
        the download limits for a track of `expected_seconds`."""
        partial = target.with_name(target.name + ".part")
        cap = self.download_limits.cap(expected_seconds)
        deadline = time.monotonic() + self.download_limits.seconds
        written = 0
        try:
            with self.request("GET", path, stream=True, **kwargs) as response, partial.open("wb") as out:
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise MediaServerError(f"{self.server} offers {int(declared) / MB:.0f} MB for one track; more "
                                           f"than the {cap / MB:.0f} MB a track of this length may take")
                while True:
                    # read1: whatever one socket read brings, so a trickling server still meets the deadline
                    chunk = response.raw.read1(1 << 16, decode_content=True)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > cap:
                        raise MediaServerError(f"download from {self.server} stopped at {cap / MB:.0f} MB: more "
                                               "than a track of this length can be (DOWNLOAD_MAX_MB)")
                    if time.monotonic() > deadline:
                        raise MediaServerError(f"download from {self.server} stopped after "
                                               f"{self.download_limits.seconds:g} s (DOWNLOAD_TIMEOUT_SECONDS)")
                    out.write(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            partial.unlink(missing_ok=True)
            raise MediaServerError(f"download from {self.server} broke off: {_reason(exc)}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return target


    def get_image(self, path: str, *, params: dict[str, Any] | None = None,
                  max_bytes: int = 20 * MB) -> bytes | None:
        """An image the server keeps (cover art); None when it has none (HTTP 404, or an answer that is not an
        image: a Subsonic error document comes with HTTP 200)."""
        try:
            response = self.request("GET", path, stream=True, params=params, headers={"Accept": "image/*"})
        except MediaServerError as exc:
            if (exc.cause or "").startswith("HTTP 404"):
                return None
            raise
        with response:
            if not response.headers.get("Content-Type", "").lower().startswith("image/"):
                return None
            try:
                body = response.raw.read(max_bytes + 1, decode_content=True)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
                raise MediaServerError(f"{self.server} broke off sending an image: {_reason(exc)}") from None
        if len(body) > max_bytes:
            raise MediaServerError(f"{self.server} sent an image of more than {max_bytes // MB} MB")
        return body

    def open_stream(self, path: str, *, byte_range: str | None = None, params: dict[str, Any] | None = None,
                    chunk_bytes: int = 1 << 16) -> AudioStream:
        """A streamed GET of audio for relaying to a browser: the Range is passed on, an answer that is a document
        (JSON, XML, HTML: a server's way of saying no with HTTP 200) is a MediaServerError."""
        headers = {"Accept": "*/*", **({"Range": byte_range} if byte_range else {})}
        response = self.request("GET", path, stream=True, params=params, headers=headers)
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind in ("application/json", "text/xml", "application/xml", "text/html", "text/plain"):
            text = response.raw.read(2000, decode_content=True).decode("utf-8", "replace")
            response.close()
            raise MediaServerError(f"{self.server} sent a {kind} document instead of audio: "
                                   f"{redact(text.strip().splitlines()[0][:200]) if text.strip() else 'empty'}",
                                   cause="the server sent no audio")
        passed = {name: response.headers[name] for name in ("Content-Type", "Content-Length", "Content-Range",
                                                            "Accept-Ranges") if name in response.headers}

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := response.raw.read(chunk_bytes, decode_content=False):
                    yield chunk
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
                return  # the server broke off: the browser sees a short body and may ask again with a Range
            finally:
                response.close()

        return AudioStream(status=response.status_code, headers=passed, chunks=chunks(), close=response.close)


_KNOWN_REASONS = {"connection refused", "name or service not known", "timed out", "no route to host",
                  "temporary failure in name resolution", "too many failed attempts"}


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host",
                   "Temporary failure in name resolution", "too many 5", "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "too many failed attempts"
    return redact(text.splitlines()[0])[:200] if text else type(exc).__name__


def _body_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip().splitlines()[0][:200] if response.text else \
            str(response.reason)
    if isinstance(body, dict):
        for key in ("message", "error", "Message", "detail"):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return str(body)[:200]
