"""MPD's play queue over one long-lived connection: read it, append to it, and wait for it to change.

The adapter (mediaservers/mpd.py) opens one connection per operation; watching the queue needs one that stays open
in MPD's `idle` state, with the same client (python-mpd2), timeouts and password handling. Every failure is a
one-line MediaServerError, so the caller only has to reconnect.

`wait` must return within its timeout so that its caller can stop promptly: python-mpd2 3.x offers no way to leave
`idle` after a timeout (a timed-out socket file cannot be read again), so the idle request is written, the socket
is watched with select(), and when nothing arrives in time `noidle` ends it (MPD then answers at once).
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from dataclasses import dataclass

import mpd

from config import Config
from mediaservers.base import MediaServerError
from mediaservers.mpd import open_client

COMMAND_BATCH = 500  # adds per command list


@dataclass(frozen=True)
class QueueState:
    """The queue's song URIs in play order, the position of the current song (None: no current song) and MPD's
    version of the queue (it grows with every change)."""

    uris: list[str]
    current: int | None
    version: int = 0

    @property
    def remaining(self) -> int:
        """Songs after the current one (the whole queue when none is current)."""
        return len(self.uris) - (self.current + 1 if self.current is not None else 0)


class MpdQueue:
    def __init__(self, host: str, port: int, *, password: str = "", timeout: float = 30.0) -> None:
        self.host, self.port, self.password, self.timeout = host, port, password, timeout
        self._client: mpd.MPDClient | None = None

    @classmethod
    def from_config(cls, config: Config) -> MpdQueue:
        return cls(config.MPD_HOST, config.MPD_PORT, password=config.MPD_PASSWORD,
                   timeout=config.HTTP_TIMEOUT_SECONDS)

    @property
    def address(self) -> str:
        return self.host if self.host.startswith(("/", "@")) else f"{self.host}:{self.port}"

    def _fail(self, exc: BaseException) -> MediaServerError:
        self.close()
        if isinstance(exc, mpd.CommandError):
            return MediaServerError(f"MPD at {self.address} refused a command: {exc}", cause="command refused")
        if isinstance(exc, ConnectionRefusedError):
            return MediaServerError(f"cannot reach MPD at {self.address}: connection refused",
                                    cause="connection refused")
        if isinstance(exc, TimeoutError):
            return MediaServerError(f"MPD at {self.address} did not answer within {self.timeout:g} s",
                                    cause="timed out")
        return MediaServerError(f"lost MPD at {self.address}: {exc or type(exc).__name__}", cause="connection lost")

    def connect(self) -> None:
        self.close()
        client = mpd.MPDClient()
        try:
            open_client(client, host=self.host, port=self.port, password=self.password, timeout=self.timeout)
        except (OSError, mpd.MPDError) as exc:
            try:
                client.disconnect()
            except Exception:  # half-open: nothing left to close
                pass
            raise self._fail(exc) from None
        self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # the socket may be gone already
                pass

    def _connected(self) -> mpd.MPDClient:
        if self._client is None:
            raise MediaServerError(f"not connected to MPD at {self.address}", cause="not connected")
        return self._client

    def state(self) -> QueueState:
        client = self._connected()
        try:
            status = client.status()
            songs = client.playlistinfo()
        except (OSError, mpd.MPDError) as exc:
            raise self._fail(exc) from None
        current = int(status["song"]) if "song" in status else None
        return QueueState(uris=[str(song["file"]) for song in songs], current=current,
                          version=int(status.get("playlist", 0)))

    def append(self, uris: Sequence[str]) -> None:
        client = self._connected()
        try:
            for start in range(0, len(uris), COMMAND_BATCH):
                client.command_list_ok_begin()
                for uri in uris[start:start + COMMAND_BATCH]:
                    client.add(uri)
                client.command_list_end()
        except (OSError, mpd.MPDError) as exc:
            raise self._fail(exc) from None

    def wait(self, subsystems: Sequence[str], timeout: float) -> list[str]:
        """The subsystems that changed (e.g. ["playlist"]) within `timeout` seconds; [] when none did."""
        client = self._connected()
        try:
            client._write_command("idle", list(subsystems))  # see the module docstring
            ready, _, _ = select.select([client.fileno()], [], [], timeout)
            if not ready:
                client._write_command("noidle")
            changed = []
            while (line := client._read_line()) is not None:  # None is MPD's closing "OK"
                if line.startswith("changed: "):
                    changed.append(line[len("changed: "):])
            return changed
        except (OSError, ValueError, mpd.MPDError) as exc:
            raise self._fail(exc) from None
