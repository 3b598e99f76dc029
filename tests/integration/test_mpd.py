"""The MPD adapter against a real MPD (Debian's `mpd`), started on 127.0.0.1 with a generated music folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpd
import pytest

from config import Config
from db import task_status as store
from mediaserver import Capability, MediaServerError, Track, delete_automatic_playlists, get_media_server
from mediaservers.mpd import Mpd
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.automatic_publishing import check_in_place_publishing
from tests.cleaning_runs import CleaningSite
from tests.conftest import wait_for
from tests.library import make_library

MPD_BINARY = shutil.which("mpd") or "/usr/sbin/mpd"
# Debian's mpd is installed by scripts/test-servers.sh; without it these tests fail rather than skip.

BASE_MTIME = 1_700_000_000
SONGS = 9
TAGGED = {"A0": '["Artist 0","Album 0"]', "A1": '["Artist 1","Album 1"]', "A2": '["Artist 2","Album 2"]'}
FOLDER = {"A1": '{"folder":"Artist 1/Album 1"}', "A2": '{"folder":"Artist 2/Album 2"}'}  # the untagged WAVs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MpdProcess:
    process: subprocess.Popen[bytes]
    port: int
    password: str
    log: Path

    def client(self) -> mpd.MPDClient:
        client = mpd.MPDClient()
        client.timeout = 10
        client.connect("127.0.0.1", self.port)
        if self.password:
            client.password(self.password)
        return client

    def stop(self) -> None:
        """By PID: SIGTERM, then SIGKILL if MPD does not exit."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_mpd(root: Path, music: Path, *, password: str = "", stickers: bool = True, songs: int = SONGS) -> MpdProcess:
    """Start `mpd --no-daemon` on a free port and wait until its first database scan has finished."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "playlists").mkdir(exist_ok=True)
    port = free_port()
    lines = [f'music_directory "{music}"', f'playlist_directory "{root / "playlists"}"', f'db_file "{root / "db"}"',
             f'state_file "{root / "state"}"', f'pid_file "{root / "pid"}"', f'log_file "{root / "log"}"',
             'bind_to_address "127.0.0.1"', f'port "{port}"', 'auto_update "no"', 'zeroconf_enabled "no"',
             'audio_output {\n  type "null"\n  name "null"\n}']
    if stickers:
        lines.append(f'sticker_file "{root / "sticker.sql"}"')
    if password:
        lines += [f'password "{password}@read,add,control,admin"', 'default_permissions ""']
    (root / "mpd.conf").write_text("\n".join(lines) + "\n")
    output = (root / "stdout").open("wb")
    process = subprocess.Popen([MPD_BINARY, "--no-daemon", str(root / "mpd.conf")], stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = MpdProcess(process, port, password, root / "log")

    def scanned() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"mpd exited with {process.returncode}: {(root / 'stdout').read_text()[-2000:]}")
        try:
            client = server.client()
        except (OSError, mpd.MPDError):
            return False
        try:
            return "updating_db" not in client.status() and int(client.stats()["songs"]) == songs
        finally:
            client.disconnect()

    try:
        wait_for(scanned, timeout=60, what="MPD's first database scan")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 albums of 3 tracks (one untagged WAV in albums 1 and 2); newer albums and tracks have later mtimes."""
    root = tmp_path_factory.mktemp("mpd-music")
    for path in make_library(root, albums=3, tracks_per_album=3, seconds=6):
        album, track = int(path.parent.name.split()[-1]), int(path.name[:2]) - 1
        os.utime(path, (BASE_MTIME + 100 * album + track, BASE_MTIME + 100 * album + track))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Iterator[MpdProcess]:
    process = start_mpd(tmp_path_factory.mktemp("mpd"), music)
    yield process
    process.stop()


@pytest.fixture
def adapter(server: MpdProcess, music: Path) -> Iterator[Mpd]:
    yield Mpd("127.0.0.1", server.port, music_directory=music, timeout=10, page_size=2)
    client = server.client()  # leave no playlists behind for the next test
    for entry in client.listplaylists():
        client.rm(entry["playlist"])
    client.disconnect()


def uris(tracks: list[Track]) -> list[str]:
    return [t.item_id for t in tracks]


def test_albums_newest_first_and_their_tracks(adapter: Mpd) -> None:
    albums = adapter.list_albums()
    assert [a.album_id for a in albums] == [TAGGED["A2"], FOLDER["A2"], FOLDER["A1"], TAGGED["A1"], TAGGED["A0"]]
    assert (albums[0].name, albums[0].artist, albums[0].added_at) == ("Album 2", "Artist 2", BASE_MTIME + 202)
    assert (albums[2].name, albums[2].artist) == ("Album 1", "Artist 1")  # untagged: named after its folders
    assert adapter.list_albums(limit=2) == albums[:2] and adapter.list_albums(limit=0) == albums

    tracks = adapter.album_tracks(TAGGED["A0"])
    assert uris(tracks) == ["Artist 0/Album 0/01 Song 0-0.flac", "Artist 0/Album 0/02 Song 0-1.ogg",
                            "Artist 0/Album 0/03 Song 0-2.mp3"]
    assert [(t.title, t.track_number, t.artist, t.album, t.album_artist) for t in tracks] == [
        (f"Song 0-{i}", i + 1, "Artist 0", "Album 0", "Artist 0") for i in range(3)]
    assert all(t.path == t.item_id and t.album_id == TAGGED["A0"] for t in tracks)
    assert all(5.5 < (t.duration_seconds or 0) < 6.5 for t in tracks)
    assert tracks[0].signature == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE_MTIME))
    assert [t.genres for t in tracks] == [("Rock",)] * 3  # MPD's Genre tag

    (wav,) = adapter.album_tracks(FOLDER["A1"])
    assert (wav.item_id, wav.title, wav.track_number, wav.artist, wav.album) == (
        "Artist 1/Album 1/03 Song 1-2.wav", "Song 1-2", 3, "Artist 1", "Album 1")
    assert len(adapter.album_tracks(TAGGED["A1"])) == 2

    with pytest.raises(MediaServerError, match="not an MPD album id"):
        adapter.album_tracks("Artist 0/Album 0")
    with pytest.raises(MediaServerError, match="not found"):
        adapter.album_tracks('["Nobody","Nothing"]')
    assert adapter.list_libraries()[0].name == "MPD database"
    assert adapter.top_played(limit=10) == [] and adapter.resolve_user("anna") == "anna"


def test_all_tracks_are_the_tracks_of_every_listed_album(adapter: Mpd) -> None:
    assert Capability.LISTS_ALL_TRACKS in adapter.capabilities
    by_album = {t for album in adapter.list_albums() for t in adapter.album_tracks(album.album_id)}
    pages = list(adapter.all_tracks(page_size=4))
    listed = [t for page in pages for t in page]
    assert len(listed) == len(by_album) == 9 and set(listed) == by_album
    assert [len(page) for page in pages] == [4, 4, 1]


def test_audio_is_read_from_the_music_directory(adapter: Mpd, music: Path, tmp_path: Path) -> None:
    track = adapter.album_tracks(TAGGED["A0"])[0]
    with adapter.open_audio(track) as audio:
        assert audio.access == "direct" and audio.path == music / track.item_id
        assert audio.path.read_bytes()[:4] == b"fLaC"

    without = Mpd(adapter.host, adapter.port)
    with pytest.raises(MediaServerError, match="set MPD_MUSIC_DIRECTORY"), without.open_audio(track):
        pass
    elsewhere = Mpd(adapter.host, adapter.port, music_directory=tmp_path)
    with pytest.raises(MediaServerError, match="is not in MPD_MUSIC_DIRECTORY"), elsewhere.open_audio(track):
        pass
    with pytest.raises(MediaServerError, match="not a file inside"), adapter.open_audio(
            Track(item_id="../../etc/passwd", title="", artist="", album="", album_artist="", album_id="")):
        pass


def test_a_stored_playlists_songs_are_replaced_under_the_same_name(adapter: Mpd, server: MpdProcess) -> None:
    assert Capability.KEEPS_PLAYLIST_ID in adapter.capabilities
    tracks = adapter.album_tracks(TAGGED["A0"]) + adapter.album_tracks(TAGGED["A1"])
    assert adapter.create_playlist("Evening_automatic", uris(tracks[:3])) == "Evening_automatic"
    wanted = [tracks[4].item_id, tracks[0].item_id, tracks[4].item_id]  # MPD keeps repeats
    assert adapter.replace_playlist_tracks("Evening_automatic", wanted) == "Evening_automatic"
    client = server.client()
    try:
        assert client.listplaylist("Evening_automatic") == wanted
        assert adapter.replace_playlist_tracks("Evening_automatic", wanted) == "Evening_automatic"
        assert client.listplaylist("Evening_automatic") == wanted
        assert [p["playlist"] for p in client.listplaylists()] == ["Evening_automatic"]  # no temporary one left
        with pytest.raises(MediaServerError, match="no song 'Nope/missing.flac'"):
            adapter.replace_playlist_tracks("Evening_automatic", [tracks[0].item_id, "Nope/missing.flac"])
        assert client.listplaylist("Evening_automatic") == wanted
        with pytest.raises(MediaServerError, match="not found"):
            adapter.replace_playlist_tracks("Never made", wanted)
        assert [p["playlist"] for p in client.listplaylists()] == ["Evening_automatic"]
    finally:
        client.disconnect()


def test_clusterings_playlists_are_updated_in_place_on_mpd(db: Any, adapter: Mpd, server: MpdProcess) -> None:
    songs = [t.item_id for a in adapter.list_albums() for t in adapter.album_tracks(a.album_id)]

    def holds(name: str) -> list[str] | None:
        client = server.client()
        try:
            if name not in {p["playlist"] for p in client.listplaylists()}:
                return None
            return [str(uri) for uri in client.listplaylist(name)]
        finally:
            client.disconnect()

    check_in_place_publishing(db, adapter, songs, holds)


def test_playlists_are_mpd_stored_playlists(adapter: Mpd, server: MpdProcess) -> None:
    tracks = adapter.album_tracks(TAGGED["A0"])
    assert adapter.create_playlist("Evening_automatic", uris(tracks)) == "Evening_automatic"
    client = server.client()
    try:
        assert client.listplaylist("Evening_automatic") == uris(tracks)
        # Creating it again replaces it.
        adapter.create_playlist("Evening_automatic", uris(tracks)[:2])
        assert client.listplaylist("Evening_automatic") == uris(tracks)[:2]
        client.playlistadd("Kept by hand", tracks[2].item_id)
        assert {(p.name, p.track_count) for p in adapter.list_playlists()} == {("Evening_automatic", 2),
                                                                              ("Kept by hand", 1)}
        # An unknown song stops the replacement and leaves the old playlist (and no temporary one).
        with pytest.raises(MediaServerError, match="no song 'Nope/missing.flac'"):
            adapter.create_playlist("Evening_automatic", [tracks[0].item_id, "Nope/missing.flac"])
        assert client.listplaylist("Evening_automatic") == uris(tracks)[:2]
        assert len(client.listplaylists()) == 2

        assert delete_automatic_playlists(adapter) == ["Evening_automatic"]
        assert [p["playlist"] for p in client.listplaylists()] == ["Kept by hand"]
        assert client.listplaylist("Kept by hand") == [tracks[2].item_id]
    finally:
        client.disconnect()
    with pytest.raises(MediaServerError, match="not found"):
        adapter.delete_playlist("Evening_automatic")
    with pytest.raises(MediaServerError, match="no tracks"):
        adapter.create_playlist("Empty_automatic", [])
    with pytest.raises(MediaServerError, match="not allowed"):
        adapter.create_playlist("a/b", uris(tracks))


def test_stickers_hold_analysis_values(adapter: Mpd, server: MpdProcess) -> None:
    uri = adapter.album_tracks(TAGGED["A1"])[0].item_id
    adapter.write_stickers(uri, {"audiomuse_tempo": "121.5", "audiomuse_camelot": "8A"})
    client = server.client()
    try:
        assert client.sticker_get("song", uri, "audiomuse_tempo") == "121.5"
    finally:
        client.disconnect()
    assert adapter.read_stickers(uri) == {"audiomuse_tempo": "121.5", "audiomuse_camelot": "8A"}
    with pytest.raises(MediaServerError, match="no song 'Nope.flac'"):
        adapter.write_stickers("Nope.flac", {"audiomuse_tempo": "1"})
    with pytest.raises(MediaServerError, match="cannot be stored"):
        adapter.write_stickers(uri, {"two words": "x"})


def one_line(exc: pytest.ExceptionInfo[MediaServerError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_server_down_and_passwords(music: Path, tmp_path: Path) -> None:
    closed = free_port()
    with pytest.raises(MediaServerError) as down:
        Mpd("127.0.0.1", closed, timeout=5).list_albums()
    assert one_line(down) == f"cannot reach MPD at 127.0.0.1:{closed}: connection refused"
    with socket.socket() as silent:  # accepts connections, never says hello
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        mute_port = silent.getsockname()[1]
        with pytest.raises(MediaServerError) as mute:
            Mpd("127.0.0.1", mute_port, timeout=1).list_albums()
        assert one_line(mute) == f"MPD at 127.0.0.1:{mute_port} did not answer within 1 s"

    guarded = start_mpd(tmp_path / "guarded", music, password="secret", stickers=False)
    try:
        config = Config.from_mapping({"MEDIASERVER_TYPE": "mpd", "MPD_HOST": "127.0.0.1", "MPD_PORT": guarded.port,
                                      "MPD_PASSWORD": "wrong", "MPD_MUSIC_DIRECTORY": str(music)})
        with pytest.raises(MediaServerError) as wrong:
            get_media_server(config).list_libraries()
        assert one_line(wrong) == f"MPD at 127.0.0.1:{guarded.port} refused the password (MPD_PASSWORD)"
        with pytest.raises(MediaServerError, match="needs a password: set MPD_PASSWORD"):
            get_media_server(config.with_overrides(MPD_PASSWORD="")).list_albums()
        right = get_media_server(config.with_overrides(MPD_PASSWORD="secret"))
        assert isinstance(right, Mpd) and len(right.list_albums()) == 5
        uri = right.album_tracks(TAGGED["A0"])[0].item_id
        with pytest.raises(MediaServerError) as no_stickers:
            right.write_stickers(uri, {"audiomuse_tempo": "1"})
        assert "no sticker database: add sticker_file to mpd.conf" in one_line(no_stickers)
    finally:
        guarded.stop()
    assert guarded.process.returncode is not None


# --- analysis end to end --------------------------------------------------------------------------------------


def test_analysis_end_to_end_through_mpd(server: MpdProcess, music: Path, make_config: Callable[..., Config],
                                         db: Any, worker_processes: Callable[..., Any], tmp_path: Path) -> None:
    from app import serve

    env = {"MEDIASERVER_TYPE": "mpd", "MPD_HOST": "127.0.0.1", "MPD_PORT": str(server.port),
           "MPD_MUSIC_DIRECTORY": str(music), "TEMP_DIR": str(tmp_path / "temp"), "AUDIO_LOAD_TIMEOUT": "30",
           "REBUILD_INDEX_BATCH_SIZE": "2", "MAX_QUEUED_ANALYSIS_JOBS": "2", "MPD_WRITE_STICKERS": "true"}
    app = serve(make_config(**env))
    try:
        start_analysis_workers(worker_processes, env)
        client = app.test_client()
        task = run_analysis(client, db)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert (result["albums_total"], result["tracks_analyzed"], result["tracks_failed"]) == (5, SONGS, 0)

        rows = db.fetch_all("SELECT item_id, file_path, album_id, audio_access FROM tracks ORDER BY item_id")
        assert len(rows) == SONGS and all(r["audio_access"] == "direct" for r in rows)
        assert all(r["file_path"] == r["item_id"] and (music / r["item_id"]).is_file() for r in rows)
        assert {r["album_id"] for r in rows} == set(TAGGED.values()) | set(FOLDER.values())
        stored = db.fetch_one("SELECT item_id, camelot, energy FROM tracks ORDER BY item_id LIMIT 1")
        stickers = Mpd("127.0.0.1", server.port, music_directory=str(music)).read_stickers(stored["item_id"])
        assert stickers["audiomuse_camelot"] == stored["camelot"]
        assert stickers["audiomuse_energy"] == f"{stored['energy']:.3f}" and "audiomuse_mood" in stickers

        again = run_analysis(client, db)
        assert again["status"] == "SUCCESS"
        assert (again["result"]["tracks_analyzed"], again["result"]["tracks_skipped"]) == (0, SONGS)
        assert again["result"]["albums_unchanged"] == 5
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_cleaning_after_a_file_is_removed_from_mpd(make_config: Callable[..., Config], db: Any,
                                                    worker_processes: Callable[..., Any], tmp_path: Path) -> None:
    """Analyze through a real MPD, remove a file and rescan: the preview shows it, the confirmed run deletes it,
    the index loses it, and a second run finds nothing."""
    from app import serve

    music = tmp_path / "music"
    paths = make_library(music, albums=2, tracks_per_album=2, seconds=3)
    process = start_mpd(tmp_path / "mpd", music, songs=4)
    env = {"MEDIASERVER_TYPE": "mpd", "MPD_HOST": "127.0.0.1", "MPD_PORT": str(process.port),
           "MPD_MUSIC_DIRECTORY": str(music), "TEMP_DIR": str(tmp_path / "temp"), "AUDIO_LOAD_TIMEOUT": "30"}
    app = serve(make_config(**env))
    try:
        start_analysis_workers(worker_processes, env)
        client = app.test_client()
        analysis = run_analysis(client, db)
        assert analysis["status"] == "SUCCESS" and analysis["result"]["tracks_analyzed"] == 4, analysis
        removed = paths[1].relative_to(music).as_posix()  # MPD's item id is the file's URI
        paths[1].unlink()
        mpd_client = process.client()
        mpd_client.update()
        wait_for(lambda: "updating_db" not in mpd_client.status() and int(mpd_client.stats()["songs"]) == 3,
                 what="MPD's rescan")
        mpd_client.disconnect()

        def finished(task_id: str) -> dict[str, Any]:
            row: dict[str, Any] = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r,
                                           timeout=60, what="the cleaning run")
            assert row["status"] == "SUCCESS", row
            return row

        site = CleaningSite(app, db)
        preview = finished(site.start(dry_run=True))
        assert preview["result"]["to_delete"] == [removed] and preview["result"]["tracks_listed"] == 3
        result = finished(site.start(preview_task_id=preview["task_id"]))["result"]
        assert (result["deleted_count"], result["index_size"]) == (1, 3)
        assert [r["item_id"] for r in db.fetch_all("SELECT item_id FROM tracks WHERE item_id = %s", (removed,))] == []
        runtime = app.extensions["audiomuse"]
        wait_for(lambda: runtime.index.size == 3, what="the web process to load the cleaned index")
        assert finished(site.start())["result"]["orphan_count"] == 0
    finally:
        app.extensions["audiomuse"].stop_background.set()
        process.stop()


def test_a_stored_playlists_songs_are_read(adapter: Mpd, server: MpdProcess) -> None:
    client = server.client()
    songs = sorted(s["file"] for s in client.listall() if "file" in s)[:3]
    for uri in (songs[2], songs[0]):
        client.playlistadd("By hand", uri)
    client.disconnect()
    assert adapter.playlist_tracks("By hand") == [songs[2], songs[0]]
    with pytest.raises(MediaServerError, match="not found"):
        adapter.playlist_tracks("Nope")


def test_songs_are_added_to_a_stored_playlist(adapter: Mpd, server: MpdProcess) -> None:
    client = server.client()
    songs = sorted(s["file"] for s in client.listall() if "file" in s)[:2]
    client.playlistadd("Grow", songs[0])
    client.disconnect()
    adapter.add_to_playlist("Grow", [songs[1]])
    assert adapter.playlist_tracks("Grow") == songs
    with pytest.raises(MediaServerError, match="not found"):
        adapter.add_to_playlist("Nope", [songs[0]])
