"""MPD's queue mode against a real MPD (Debian's `mpd`, started as tests/integration/test_mpd.py starts it): songs
are appended when fewer than MPD_QUEUE_MIN_AHEAD remain after the current one, nothing is appended once the mode
is off and the driver ends, one driver at a time holds the lock, and when MPD goes away the driver reconnects with
a doubling wait and carries on when MPD is back. Bounded: every wait polls with a timeout."""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.app_settings import effective_config, save_exclusion_settings
from mediaservers.mpd import Mpd
from mediaservers.mpd_queue import MpdQueue
from tasks import mpd_queue
from tests.conftest import wait_for
from tests.integration.test_mpd import MPD_BINARY, MpdProcess, start_mpd
from tests.library import make_library
from tests.seeded_library import seed_arc
from voyager_manager import IndexHolder


@pytest.fixture(scope="module")
def mpd_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MpdProcess, Path, list[str]]]:
    """A real MPD on 3 albums of 3 songs; its song URIs in album order."""
    music = tmp_path_factory.mktemp("queue-music")
    make_library(music, albums=3, tracks_per_album=3, seconds=6)
    root = tmp_path_factory.mktemp("queue-mpd")
    server = start_mpd(root, music)
    adapter = Mpd("127.0.0.1", server.port, music_directory=music, timeout=10)
    uris = [t.item_id for album in sorted(adapter.list_albums(), key=lambda a: a.name)
            for t in adapter.album_tracks(album.album_id)]
    assert len(uris) == 9
    yield server, root, uris
    server.stop()


@pytest.fixture
def site(mpd_site, make_config, db, redis):
    """The MPD songs analyzed (seed_arc: u0 … u8 on a quarter circle, in that order), a configuration that points
    at MPD, an empty queue, and a way to run the driver in a thread."""
    server, root, uris = mpd_site
    if server.process.poll() is not None:  # a previous test left it stopped
        restart(server, root)
    cfg = make_config(MEDIASERVER_TYPE="mpd", MPD_HOST="127.0.0.1", MPD_PORT=server.port, HTTP_TIMEOUT_SECONDS=5,
                      MPD_QUEUE_MIN_AHEAD=3, MPD_QUEUE_ADD=3, MPD_QUEUE_RECONNECT_MAX_SECONDS=1)
    seed_arc(db, redis, cfg, [(uri, Path(uri).stem, uri) for uri in uris])
    client = server.client()
    client.stop()
    client.clear()
    client.disconnect()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    ended: list[str] = []

    def drive() -> threading.Thread:
        thread = threading.Thread(target=lambda: ended.append(mpd_queue.keep_queue(db, redis, cfg, stop)),
                                  daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield server, root, uris, cfg, drive, ended
    stop.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def restart(server: MpdProcess, root: Path) -> None:
    """Start MPD again with its configuration (same port, database, state file)."""
    output = (root / "stdout").open("ab")
    server.process = subprocess.Popen([MPD_BINARY, "--no-daemon", str(root / "mpd.conf")], stdout=output,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def answers() -> bool:
        try:
            server.client().disconnect()
        except Exception:
            return False
        return True

    wait_for(answers, timeout=20, what="MPD to start again")


def queue(server: MpdProcess) -> list[str]:
    client = server.client()
    try:
        return [song["file"] for song in client.playlistinfo()]
    finally:
        client.disconnect()


def playlist_version(server: MpdProcess) -> int:
    client = server.client()
    try:
        return int(client.status()["playlist"])
    finally:
        client.disconnect()


def fill(server: MpdProcess, uris: list[str], *, current: int | None = None) -> None:
    """Replace the queue in one command list: MPD runs it without serving another client in between, so the driver
    sees the new queue, never the half-filled one (which it would rightly top up)."""
    client = server.client()
    try:
        client.command_list_ok_begin()
        client.clear()
        for uri in uris:
            client.add(uri)
        if current is not None:
            client.play(current)
            client.pause(1)
        client.command_list_end()
    finally:
        client.disconnect()


def test_songs_are_appended_when_few_remain_and_none_once_the_mode_is_off(site, db, redis):
    server, _, u, cfg, drive, ended = site
    fill(server, u[:3], current=1)  # one song after the current one: fewer than 3
    mpd_queue.set_mode(db, True)
    driver = drive()
    # the seeds are the queue's last songs, the previous queue all of it: the three next songs on the arc
    wait_for(lambda: len(queue(server)) == 6, timeout=15, what="songs appended to MPD's queue")
    assert queue(server) == u[:6]
    state = wait_for(lambda: (s := mpd_queue.status(redis))["state"] == "watching" and s, timeout=5,
                     what="the driver's state")
    assert state["running"] and [s["item_id"] for s in state["last_added"]["songs"]] == u[3:6]
    assert state["last_added"]["songs"][0]["reason"].startswith(f"near {Path(u[2]).stem} (distance ")
    # one driver at a time: another worker finds the lock taken
    assert mpd_queue.keep_queue(db, redis, cfg, threading.Event()) == "lock held elsewhere"
    # four remain after the current one: the driver looks at the changed queue and adds nothing
    fill(server, u[:6], current=1)
    version = playlist_version(server)
    wait_for(lambda: (mpd_queue.status(redis)["checked_version"] or 0) >= version, timeout=5,
             what="the driver to look at the changed queue")
    assert queue(server) == u[:6]

    mpd_queue.set_mode(db, False)
    driver.join(5)
    assert not driver.is_alive() and ended == ["off"]
    assert mpd_queue.status(redis)["running"] is False and mpd_queue.status(redis)["state"] == "off"
    fill(server, u[8:9])
    driver.join(1.5)  # time the driver would have had to react
    assert queue(server) == u[8:9]


def test_the_driver_reconnects_with_backoff_and_resumes_when_mpd_is_back(site, db, redis, caplog):
    server, root, u, _, drive, ended = site
    caplog.set_level(logging.INFO, logger="tasks.mpd_queue")
    fill(server, u[:6])  # no current song: six remain, enough
    mpd_queue.set_mode(db, True)
    drive()
    wait_for(lambda: mpd_queue.status(redis)["state"] == "watching", timeout=10, what="the driver watching MPD")
    server.stop()
    wait_for(lambda: len(re.findall(r"trying again in (\S+) s", caplog.text)) >= 3, timeout=10,
             what="three reconnection attempts")
    assert re.findall(r"trying again in (\S+) s", caplog.text)[:3] == ["0.5", "1", "1"]  # doubling, up to the max
    state = mpd_queue.status(redis)
    assert state["running"] and state["state"] == "reconnecting"
    assert "MPD at 127.0.0.1" in state["last_error"]["message"]

    restart(server, root)
    wait_for(lambda: mpd_queue.status(redis)["state"] == "watching", timeout=10, what="the driver back on MPD")
    fill(server, u[8:9])  # the end of the arc: its nearest songs come back in order
    wait_for(lambda: len(queue(server)) == 4, timeout=10, what="songs appended after the reconnection")
    assert queue(server) == [u[8], u[7], u[6], u[5]]
    assert ended == []


def test_the_supervisor_thread_drives_while_on_and_ends_with_the_worker(site, db, redis):
    server, _, u, cfg, _, _ = site
    fill(server, u[:1])
    stop = threading.Event()
    mpd_queue.set_mode(db, True)
    thread = mpd_queue.start_mpd_queue_thread(db, redis, cfg, stop)
    wait_for(lambda: len(queue(server)) == 4, timeout=15, what="the supervisor's driver adding songs")
    assert queue(server) == u[:4]
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and mpd_queue.status(redis)["running"] is False


def test_the_queue_mode_never_queues_what_the_blocklists_leave_out(site, db, redis):
    server, _, u, cfg, _, _ = site
    fill(server, u[:3], current=1)
    save_exclusion_settings(db, {"EXCLUDE_ARTISTS": "artist 4"})  # u4 (seed_arc: u_i is by Artist i)
    settings = effective_config(cfg, db)
    index = IndexHolder(db, cfg.INDEX_NAME)
    index.reload(build_caches=False)
    connection = MpdQueue.from_config(settings)
    connection.connect()
    try:
        assert mpd_queue.top_up(connection, index, settings, redis) == [u[3], u[5], u[6]]
    finally:
        connection.close()
    assert queue(server) == [*u[:3], u[3], u[5], u[6]]
