"""The Navidrome (Subsonic API) adapter against a real supysonic server and a local OpenSubsonic-shaped server.

supysonic (installed in .venv-supysonic by scripts/test-servers.sh) is a real Subsonic API implementation: API
1.12.0, password auth only, no play counts. The fake in tests/fakes/subsonic.py covers what supysonic lacks and
what Navidrome does: token auth, playCount/played, plus failure switches (HTTP 500, 401, slow answers).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from app import serve
from config import Config
from mediaserver import (
    Capability,
    CoverRequest,
    MediaServerError,
    Track,
    UserCredentials,
    delete_automatic_playlists,
    get_media_server,
)
from mediaservers.navidrome import Navidrome
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.automatic_publishing import check_in_place_publishing
from tests.cleaning_runs import CleaningSite, seed_tracks
from tests.conftest import REPO_ROOT, wait_for
from tests.fakes.subsonic import FakeSubsonic, make_albums
from tests.library import make_library, rhythmic_piece, write_track

SUPYSONIC_BIN = REPO_ROOT / ".venv-supysonic" / "bin"
USER, PASSWORD = "admin", "correct horse"


# --- a real supysonic server -----------------------------------------------------------------------------------
@dataclass
class Supysonic:
    url: str
    music: Path  # the folder registered as library "Music"
    extra: Path  # the folder registered as library "Extra"
    log: Path

    def api(self, method: str, **params: Any) -> dict[str, Any]:
        """Call supysonic directly (not through the adapter) to see what it really holds."""
        query = {"u": USER, "p": "enc:" + PASSWORD.encode().hex(), "v": "1.12.0", "c": "test", "f": "json",
                 **params}
        answer = requests.get(f"{self.url}/rest/{method}", params=query, timeout=10).json()["subsonic-response"]
        assert answer["status"] == "ok", answer
        return answer

    def playlists(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.api("getPlaylists")["playlists"].get("playlist", [])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_supysonic(root: Path, env: dict[str, str], log: Path, *, music: Path,
                     extra: Path) -> tuple[subprocess.Popen[bytes], Supysonic] | None:
    """supysonic-server on a free port once it answers ping, or None when it exited (port taken)."""
    port = _free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(SUPYSONIC_BIN / "supysonic-server"), "-S", "waitress", "-h", "127.0.0.1", "-p", str(port)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    instance = Supysonic(url=f"http://127.0.0.1:{port}", music=music, extra=extra, log=log)

    def answering() -> str:
        if server.poll() is not None:
            return "exited"
        try:
            return "up" if instance.api("ping")["status"] == "ok" else ""
        except (requests.RequestException, ValueError):
            return ""

    try:
        if wait_for(answering, timeout=60, what="supysonic to answer /rest/ping") == "up":
            return server, instance
    except AssertionError:
        _stop(server)
        raise
    return None


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM supysonic's process group; SIGKILL it if it lingers."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="module")
def supysonic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supysonic]:
    """supysonic on 127.0.0.1 with two libraries: Music (3 generated albums, ogg/flac/mp3/wav) and Extra."""
    if not (SUPYSONIC_BIN / "supysonic-server").exists():
        pytest.fail("supysonic is not installed: run scripts/test-servers.sh")
    root = tmp_path_factory.mktemp("supysonic")
    music, extra = root / "music", root / "extra"
    make_library(music, albums=3, tracks_per_album=2, seconds=6)
    cover = io.BytesIO()
    Image.new("RGB", (400, 400), (230, 30, 30)).save(cover, "JPEG")
    (music / "Artist 0" / "Album 0" / "cover.jpg").write_bytes(cover.getvalue())  # Album 0's cover art
    write_track(extra / "Extra Artist" / "Extra Album" / "01 Extra.flac",
                rhythmic_piece(bpm=100, seconds=3, root_hz=300, seed=99),
                title="Extra", artist="Extra Artist", album="Extra Album", track_number=1)
    (root / "supysonic.conf").write_text(f"""[base]
database_uri = sqlite:///{root / 'supysonic.db'}
scanner_extensions = ogg flac mp3 wav
[webapp]
cache_dir = {root / 'cache'}
log_file = {root / 'supysonic.log'}
log_level = INFO
mount_api = yes
mount_webui = no
[daemon]
socket = {root / 'daemon.sock'}
run_watcher = no
""")
    # supysonic reads ./supysonic.conf (and ~/.config/supysonic): run in `root` with HOME there too.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(root)

    def cli(*args: str) -> None:
        done = subprocess.run([str(SUPYSONIC_BIN / "supysonic-cli"), *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"supysonic-cli {' '.join(args[:2])} failed: {done.stderr or done.stdout}"

    cli("user", "add", USER, "-p", PASSWORD)
    cli("user", "setroles", "-A", USER)
    cli("folder", "add", "Music", str(music))
    cli("folder", "add", "Extra", str(extra))
    cli("folder", "scan", "--foreground", "Music", "Extra")
    log = root / "server.out"
    for _ in range(3):  # another program may take the probed port before supysonic binds it: try a new one
        started = _start_supysonic(root, env, log, music=music, extra=extra)
        if started:
            break
    else:
        raise AssertionError(f"supysonic-server did not start: {log.read_text()[-2000:]}")
    server, instance = started
    try:
        yield instance
    finally:
        _stop(server)


def settings(url: str, tmp_path: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = {"MEDIASERVER_TYPE": "navidrome", "NAVIDROME_URL": url, "NAVIDROME_USER": USER,
                              "NAVIDROME_PASSWORD": PASSWORD, "TEMP_DIR": str(tmp_path / "temp"),
                              "HTTP_TIMEOUT_SECONDS": 10, "HTTP_RETRIES": 1, "DATA_DIR": str(tmp_path / "data")}
    values.update(overrides)
    return Config.from_mapping(values)


def assert_one_line(error: pytest.ExceptionInfo[MediaServerError]) -> str:
    text = str(error.value)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def test_supysonic_albums_are_paged_newest_first_and_filtered_by_library(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path), page_size=2)
    assert isinstance(get_media_server(settings(supysonic.url, tmp_path)), Navidrome)
    assert server.auth_method == "password"  # supysonic speaks API 1.12.0: token auth is refused
    assert {lib.name for lib in server.list_libraries()} == {"Music", "Extra"}

    every = supysonic.api("getAlbumList2", type="alphabeticalByName", size=500)["albumList2"]["album"]
    albums = server.list_albums()  # 5 albums through pages of 2
    assert sorted(a.album_id for a in albums) == sorted(a["id"] for a in every) and len(every) == 5
    # The WAV files carry no tags: supysonic files them under one "[non-album tracks]" album.
    assert {a.name for a in albums} == {"Album 0", "Album 1", "Album 2", "[non-album tracks]", "Extra Album"}
    added = [a.added_at for a in albums]
    assert all(added) and added == sorted(added, reverse=True)  # type: ignore[type-var]
    three = server.list_albums(limit=3)
    assert len(three) == 3 and {a.album_id for a in three} <= {a.album_id for a in albums}

    libraries = server.album_libraries(albums)  # which music folder each album is in (the library scope)
    assert {a.name: libraries[a.album_id] for a in albums} == {
        "Album 0": "Music", "Album 1": "Music", "Album 2": "Music", "[non-album tracks]": "Music",
        "Extra Album": "Extra"}
    music_only = Navidrome.from_config(settings(supysonic.url, tmp_path, MUSIC_LIBRARIES="music"), page_size=3)
    assert len(music_only.list_albums()) == 4 and "Extra Album" not in {a.name for a in music_only.list_albums()}
    extra_only = Navidrome.from_config(settings(supysonic.url, tmp_path, MUSIC_LIBRARIES="Extra"))
    assert [a.name for a in extra_only.list_albums()] == ["Extra Album"]
    with pytest.raises(MediaServerError) as error:
        Navidrome.from_config(settings(supysonic.url, tmp_path, MUSIC_LIBRARIES="Music,Nope")).list_albums()
    assert "Nope" in assert_one_line(error) and "Extra, Music" in str(error.value)


def album_named(server: Navidrome, name: str) -> str:
    return next(a.album_id for a in server.list_albums() if a.name == name)


def test_supysonic_gives_an_albums_cover_art_and_none_for_an_album_without(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path))
    assert Capability.COVER_ART in server.capabilities
    with_cover = server.album_tracks(album_named(server, "Album 0"))[0]
    found = server.cover_art(CoverRequest(with_cover.item_id, path=with_cover.path, album_id=with_cover.album_id))
    assert found is not None
    with Image.open(io.BytesIO(found)) as image:
        assert image.size == (400, 400) and image.convert("RGB").getpixel((200, 200))[0] > 200
    without = server.album_tracks(album_named(server, "Album 2"))[0]
    assert server.cover_art(CoverRequest(without.item_id, path=without.path, album_id=without.album_id)) is None


def test_supysonic_album_tracks_carry_metadata(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path))
    album_id = album_named(server, "Album 0")
    tracks = server.album_tracks(album_id)
    assert [(t.title, t.track_number, t.artist, t.album, t.album_artist) for t in tracks] == [
        ("Song 0-0", 1, "Artist 0", "Album 0", "Artist 0"), ("Song 0-1", 2, "Artist 0", "Album 0", "Artist 0")]
    assert [t.path for t in tracks] == ["Artist 0/Album 0/01 Song 0-0.flac", "Artist 0/Album 0/02 Song 0-1.ogg"]
    assert tracks[0].artist_id and {t.artist_id for t in tracks} == {tracks[0].artist_id}  # the song's artistId
    for track in tracks:
        assert track.album_id == album_id and track.duration_seconds and 5 <= track.duration_seconds <= 7
        size = (supysonic.music / str(track.path)).stat().st_size
        assert track.signature and track.signature.startswith(f"{size}:")
    with pytest.raises(MediaServerError) as error:
        server.album_tracks("00000000-0000-0000-0000-000000000000")
    assert "not found" in assert_one_line(error)


def recording_calls(server: Navidrome) -> list[str]:
    """The Subsonic methods `server` calls from now on, in order (its own _call, wrapped to note the name)."""
    methods: list[str] = []
    call = server._call

    def noted(method: str, params: Any = None) -> dict[str, Any]:
        methods.append(method)
        return call(method, params)

    server._call = noted  # type: ignore[method-assign]
    return methods


def test_supysonic_all_tracks_are_the_tracks_of_every_listed_album(supysonic, tmp_path):
    for libraries, count in (("", 7), ("Extra", 1)):
        server = Navidrome.from_config(settings(supysonic.url, tmp_path, MUSIC_LIBRARIES=libraries))
        assert Capability.LISTS_ALL_TRACKS in server.capabilities
        by_album = {t for album in server.list_albums() for t in server.album_tracks(album.album_id)}
        methods = recording_calls(server)
        pages = list(server.all_tracks(page_size=3))
        listed = [t for page in pages for t in page]
        assert len(listed) == len(by_album) == count and set(listed) == by_album
        assert all(t.signature and t.path and t.artist_id for t in listed)
        assert "getAlbum" not in methods and methods.count("search3") == -(-count // 3) + 1  # then an empty page


def test_all_tracks_from_navidromes_search_and_album_by_album_where_it_falls_short(tmp_path):
    albums = make_albums(4, songs_per_album=3)
    albums[3].folder_id = 2
    with FakeSubsonic(user=FAKE_USER, password=FAKE_PASSWORD, albums=albums, folders={1: "Music", 2: "Live"},
                      search_page_cap=4) as fake:
        server = Navidrome.from_config(fake_settings(fake, tmp_path))
        by_album = {t for album in server.list_albums() for t in server.album_tracks(album.album_id)}
        assert len(by_album) == 12

        methods = recording_calls(server)
        listed = [t for page in server.all_tracks(page_size=10) for t in page]  # the fake sends 4 a page
        assert len(listed) == 12 and set(listed) == by_album and "getAlbum" not in methods
        queries = [(c["query"][0], c["songOffset"][0], c["songCount"][0]) for c in fake.calls("search3")]
        assert queries == [("", "0", "10"), ('""', "0", "10"), ('""', "4", "10"), ('""', "8", "10"),
                           ('""', "12", "10")]  # the empty string is refused, two quote marks list every song

        live = Navidrome.from_config(fake_settings(fake, tmp_path, MUSIC_LIBRARIES="Live"))
        assert {t.album_id for page in live.all_tracks() for t in page} == {"al-3"}

        fake.unsearchable_albums = {"al-1"}  # search3 leaves an album out: it is listed with getAlbum
        methods = recording_calls(server)
        listed = [t for page in server.all_tracks(page_size=10) for t in page]
        assert len(listed) == 12 and set(listed) == by_album
        assert [c["id"][0] for c in fake.calls("getAlbum")][-1:] == ["al-1"] and methods.count("getAlbum") == 1

        fake.every_song_query = None  # a server that lists no song for an empty query: album by album
        methods = recording_calls(server)
        pages = list(server.all_tracks(page_size=5))
        assert set(t for page in pages for t in page) == by_album and methods.count("getAlbum") == 4
        assert [len(page) for page in pages] == [6, 6]


def test_supysonic_audio_is_downloaded_or_read_in_place(supysonic, tmp_path):
    temp = tmp_path / "temp"
    downloading = Navidrome.from_config(settings(supysonic.url, tmp_path))
    tracks = downloading.album_tracks(album_named(downloading, "Album 0"))
    for track in tracks:
        original = supysonic.music / str(track.path)
        with downloading.open_audio(track) as audio:
            assert audio.access == "downloaded" and audio.path.parent == temp
            assert audio.path.suffix == original.suffix and audio.path.read_bytes() == original.read_bytes()
        assert not audio.path.exists()
    assert list(temp.iterdir()) == []

    # supysonic's paths are relative to the library: an empty server prefix maps the whole library...
    whole = Navidrome.from_config(settings(supysonic.url, tmp_path, PATH_MAPPING=f"={supysonic.music}"))
    with whole.open_audio(tracks[0]) as audio:
        assert audio.access == "direct" and audio.path == supysonic.music / str(tracks[0].path)
    # ...and a prefix maps part of it; the rest is downloaded.
    partial = Navidrome.from_config(settings(supysonic.url, tmp_path,
                                             PATH_MAPPING=f"Artist 0={supysonic.music}/Artist 0"))
    with partial.open_audio(tracks[1]) as audio:
        assert audio.access == "direct" and audio.path == supysonic.music / str(tracks[1].path)
    other = partial.album_tracks(album_named(partial, "Album 1"))[0]
    with partial.open_audio(other) as audio:
        assert audio.access == "downloaded"

    missing = Track(item_id="00000000-0000-0000-0000-000000000000", title="x", artist="x", album="x",
                    album_artist="x", album_id="x")
    with pytest.raises(MediaServerError) as error, downloading.open_audio(missing):
        pass
    assert "not found" in assert_one_line(error)
    assert list(temp.iterdir()) == []


def test_supysonic_playlists_are_created_in_batches_replaced_and_deleted(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path), playlist_batch=2)
    ids = [t.item_id for a in server.list_albums() for t in server.album_tracks(a.album_id)]
    assert len(ids) == 7
    first = server.create_playlist("Mix_automatic", ids)  # one createPlaylist + three updatePlaylist calls
    keep = server.create_playlist("Keep me", ids[:1])
    playlists = supysonic.playlists()
    assert playlists["Mix_automatic"]["id"] == first and playlists["Mix_automatic"]["songCount"] == 7
    assert [e["id"] for e in supysonic.api("getPlaylist", id=first)["playlist"]["entry"]] == ids
    assert {(p.name, p.track_count) for p in server.list_playlists()} == {("Mix_automatic", 7), ("Keep me", 1)}

    second = server.create_playlist("Mix_automatic", ids[2:5])
    playlists = supysonic.playlists()
    assert second != first and playlists["Mix_automatic"]["id"] == second
    assert playlists["Mix_automatic"]["songCount"] == 3 and len(playlists) == 2

    assert server.playlist_tracks(second) == ids[2:5]  # read back in order (getPlaylist)
    assert delete_automatic_playlists(server) == ["Mix_automatic"]
    assert list(supysonic.playlists()) == ["Keep me"]
    server.delete_playlist(keep)
    assert supysonic.playlists() == {}


def test_supysonic_replaces_a_playlists_songs_under_the_same_id(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path), playlist_batch=2)
    assert Capability.KEEPS_PLAYLIST_ID in server.capabilities
    ids = [t.item_id for a in server.list_albums() for t in server.album_tracks(a.album_id)]
    playlist_id = server.create_playlist("Mix_automatic", ids[:2])
    other = server.create_playlist("Keep me", ids[:1])
    try:
        wanted = [ids[6], ids[3], ids[0], ids[5], ids[6]]  # a createPlaylist with 2, then updatePlaylist 2 and 1
        assert server.replace_playlist_tracks(playlist_id, wanted) == playlist_id
        playlists = supysonic.playlists()
        assert playlists["Mix_automatic"]["id"] == playlist_id and playlists["Mix_automatic"]["songCount"] == 5
        assert [e["id"] for e in supysonic.api("getPlaylist", id=playlist_id)["playlist"]["entry"]] == wanted
        assert server.replace_playlist_tracks(playlist_id, wanted) == playlist_id  # idempotent
        assert [e["id"] for e in supysonic.api("getPlaylist", id=playlist_id)["playlist"]["entry"]] == wanted
        assert [e["id"] for e in supysonic.api("getPlaylist", id=other)["playlist"]["entry"]] == ids[:1]
        assert sorted(supysonic.playlists()) == ["Keep me", "Mix_automatic"]
        with pytest.raises(MediaServerError):
            server.replace_playlist_tracks("00000000-0000-0000-0000-000000000000", wanted)
    finally:
        for playlist in (playlist_id, other):
            server.delete_playlist(playlist)


def test_clusterings_playlists_are_updated_in_place_on_supysonic(supysonic, db, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path), playlist_batch=2)
    songs = [t.item_id for a in server.list_albums() for t in server.album_tracks(a.album_id)]

    def holds(playlist_id: str) -> list[str] | None:
        if playlist_id not in {p["id"] for p in supysonic.playlists().values()}:
            return None
        return [e["id"] for e in supysonic.api("getPlaylist", id=playlist_id)["playlist"].get("entry", [])]

    try:
        check_in_place_publishing(db, server, songs, holds)
    finally:
        for playlist in supysonic.playlists().values():
            server.delete_playlist(playlist["id"])


def test_supysonic_wrong_password_and_per_user_credentials(supysonic, tmp_path):
    wrong = settings(supysonic.url, tmp_path, NAVIDROME_PASSWORD="not it")
    with pytest.raises(MediaServerError) as error:
        Navidrome.from_config(wrong).list_albums()
    text = assert_one_line(error)
    assert "refused the credentials" in text and "Wrong username or password" in text and "not it" not in text
    as_user = Navidrome.from_config(wrong, user=UserCredentials(user=USER, secret=PASSWORD))
    assert len(as_user.list_libraries()) == 2


def test_supysonic_keeps_no_play_counts(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path))
    song = server.album_tracks(album_named(server, "Album 1"))[0]
    # supysonic counts a stream internally but never reports playCount: nothing is invented.
    requests.get(f"{supysonic.url}/rest/stream", timeout=10, params={
        "u": USER, "p": "enc:" + PASSWORD.encode().hex(), "v": "1.12.0", "c": "test", "id": song.item_id}).close()
    assert server.top_played(limit=10) == []
    assert server.resolve_user(USER) == USER


def test_server_down_gives_a_one_line_cause(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    server = Navidrome.from_config(settings(url, tmp_path, HTTP_TIMEOUT_SECONDS=1, HTTP_RETRIES=1))
    with pytest.raises(MediaServerError) as error:
        server.list_albums()
    assert f"cannot reach Navidrome at {url}" in assert_one_line(error)


# --- analysis end to end through real workers ------------------------------------------------------------------


def test_analysis_end_to_end_from_supysonic(supysonic, make_config, db, worker_processes, tmp_path):
    temp = tmp_path / "temp"
    env = {"MEDIASERVER_TYPE": "navidrome", "NAVIDROME_URL": supysonic.url, "NAVIDROME_USER": USER,
           "NAVIDROME_PASSWORD": PASSWORD, "MUSIC_LIBRARIES": "Music", "TEMP_DIR": str(temp),
           # Album 0 is readable here through the mapping; the other albums come through `download`.
           "PATH_MAPPING": f"Artist 0={supysonic.music}/Artist 0", "HTTP_TIMEOUT_SECONDS": "20",
           "HTTP_RETRIES": "2", "AUDIO_LOAD_TIMEOUT": "60", "REBUILD_INDEX_BATCH_SIZE": "2",
           "MAX_QUEUED_ANALYSIS_JOBS": "2", "PLAYLIST_DIR": str(tmp_path / "playlists")}
    app = serve(make_config(**env))
    try:
        client = app.test_client()
        start_analysis_workers(worker_processes, env)
        task = run_analysis(client, db)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert (result["albums_total"], result["tracks_analyzed"], result["tracks_failed"]) == (4, 6, 0), result
        rows = db.fetch_all("SELECT item_id, album, artist, file_path, audio_access FROM tracks ORDER BY file_path")
        assert len(rows) == 6
        access = {row["file_path"]: row["audio_access"] for row in rows}
        assert access == {path: "direct" if path.startswith("Artist 0/") else "downloaded"
                          for path in access}, access
        assert sorted(access.values()) == ["direct"] * 2 + ["downloaded"] * 4
        assert list(temp.iterdir()) == []  # downloads are removed after the analysis of each track

        again = run_analysis(client, db)
        assert again["status"] == "SUCCESS"
        assert (again["result"]["tracks_analyzed"], again["result"]["tracks_skipped"]) == (0, 6)
        assert again["result"]["albums_unchanged"] == 4
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_cleaning_keeps_what_supysonic_lists_and_removes_what_it_no_longer_does(supysonic, make_config, db, redis,
                                                                                 run_worker_burst, tmp_path):
    """Every track supysonic lists is analyzed, plus two it no longer has (deleted files): the cleaning run removes
    those two and nothing else; with supysonic down nothing is removed."""
    settings_env = {"MEDIASERVER_TYPE": "navidrome", "NAVIDROME_URL": supysonic.url, "NAVIDROME_USER": USER,
                    "NAVIDROME_PASSWORD": PASSWORD, "HTTP_TIMEOUT_SECONDS": 10, "HTTP_RETRIES": 0,
                    "TEMP_DIR": str(tmp_path / "temp")}
    app = serve(make_config(**settings_env))
    try:
        server = get_media_server(app.extensions["audiomuse"].config)
        tracks = [t for album in server.list_albums() for t in server.album_tracks(album.album_id)]
        gone = [Track(item_id=f"deleted-{i}", title=f"Gone {i}", artist="Old", album="Old", album_artist="Old",
                      album_id="old-album") for i in range(2)]
        seed_tracks(db, redis, app.extensions["audiomuse"].config, [*tracks, *gone])
        site = CleaningSite(app, db, run_worker_burst)
        result = site.run()["result"]
        assert (result["tracks_listed"], result["refused"]) == (len(tracks), None)
        assert sorted(result["to_delete"]) == ["deleted-0", "deleted-1"] and result["deleted_count"] == 2
        assert site.count("tracks") == len(tracks) == 7
        down = serve(make_config(**{**settings_env, "NAVIDROME_URL": f"http://127.0.0.1:{_free_port()}"}))
        try:
            refused = CleaningSite(down, db, run_worker_burst).run()["result"]
        finally:
            down.extensions["audiomuse"].stop_background.set()
        assert "album list failed" in refused["refused"] and site.count("tracks") == 7
    finally:
        app.extensions["audiomuse"].stop_background.set()


# --- an OpenSubsonic-shaped server (Navidrome's shapes) ---------------------------------------------------------
FAKE_USER, FAKE_PASSWORD = "navi", "s3cret"


@pytest.fixture
def fake() -> Iterator[FakeSubsonic]:
    with FakeSubsonic(user=FAKE_USER, password=FAKE_PASSWORD) as server:
        yield server


def fake_settings(fake: FakeSubsonic, tmp_path: Path, **overrides: Any) -> Config:
    return settings(fake.url, tmp_path, **{"NAVIDROME_USER": FAKE_USER, "NAVIDROME_PASSWORD": FAKE_PASSWORD,
                                           "HTTP_TIMEOUT_SECONDS": 5, **overrides})


def test_token_auth_paging_tracks_and_download(fake, tmp_path):
    server = Navidrome.from_config(fake_settings(fake, tmp_path), page_size=2)
    assert [a.album_id for a in server.list_albums()] == ["al-4", "al-3", "al-2", "al-1", "al-0"]
    assert [a.album_id for a in server.list_albums(limit=3)] == ["al-4", "al-3", "al-2"]
    pages = [(p["size"][0], p["offset"][0]) for p in fake.calls("getAlbumList2")]
    assert pages == [("2", "0"), ("2", "2"), ("2", "4"), ("2", "0"), ("1", "2")]
    album = server.list_albums(limit=1)[0]
    assert (album.name, album.artist, album.year) == ("Album 4", "Artist 4", 2004)

    tracks = server.album_tracks("al-1")
    assert [(t.item_id, t.title, t.track_number, t.year, t.duration_seconds) for t in tracks] == [
        ("so-1-0", "Song 1-0", 1, 2001, 10.0), ("so-1-1", "Song 1-1", 2, 2001, 10.0)]
    assert tracks[0].path == "Artist 1/Album 1/01 - Song 1-0.flac"
    assert tracks[0].signature == f"{len(fake.albums[1].songs[0].data)}:2024-01-02T10:00:00Z"
    with server.open_audio(tracks[0]) as audio:
        assert audio.access == "downloaded" and audio.path.read_bytes() == fake.albums[1].songs[0].data
        assert audio.path.suffix == ".flac"
    missing = Track(item_id="nope", title="x", artist="x", album="x", album_artist="x", album_id="x")
    with pytest.raises(MediaServerError) as error, server.open_audio(missing):
        pass
    assert "Song not found" in assert_one_line(error)

    assert len(fake.calls("ping")) == 1  # the auth method is found once per adapter
    salts = set()
    for _, params in fake.requests:
        assert "p" not in params and params["v"] == ["1.16.1"] and params["c"] == ["AudioMuse"]
        assert params["f"] == ["json"] and params["u"] == [FAKE_USER]
        salts.add(params["s"][0])
    assert len(salts) == len(fake.requests)  # a fresh salt every time


def test_token_refused_falls_back_to_the_password(tmp_path):
    with FakeSubsonic(user=FAKE_USER, password=FAKE_PASSWORD, token_auth=False) as ldap_like:
        server = Navidrome.from_config(fake_settings(ldap_like, tmp_path))
        assert server.auth_method == "password"
        assert len(server.list_albums()) == 5
        last = ldap_like.requests[-1][1]
        assert last["p"] == ["enc:" + FAKE_PASSWORD.encode().hex()] and "t" not in last


def test_wrong_password_with_tokens(fake, tmp_path):
    with pytest.raises(MediaServerError) as error:
        Navidrome.from_config(fake_settings(fake, tmp_path, NAVIDROME_PASSWORD="nope")).list_albums()
    assert "refused the credentials of user 'navi'" in assert_one_line(error)
    assert [name for name, _ in fake.requests] == ["ping"]  # no password fallback for a server that has tokens


def test_play_counts_come_from_frequent_albums(fake, tmp_path):
    fake.albums[0].songs[0].play_count, fake.albums[0].songs[0].played = 5, "2024-03-01T12:00:00Z"
    fake.albums[2].songs[1].play_count, fake.albums[2].songs[1].played = 9, "2024-03-02T08:30:00.123456789Z"
    fake.albums[2].songs[0].play_count = 1
    server = Navidrome.from_config(fake_settings(fake, tmp_path))
    top = server.top_played(limit=2)
    assert [(p.item_id, p.play_count) for p in top] == [("so-2-1", 9), ("so-0-0", 5)]
    assert top[0].last_played == pytest.approx(1709368200.123456)
    assert top[1].last_played == 1709294400.0
    everything = server.top_played(limit=10)
    assert [(p.item_id, p.play_count, p.last_played) for p in everything][2] == ("so-2-0", 1, None)
    assert server.top_played(limit=10, user=UserCredentials(user=FAKE_USER, secret=FAKE_PASSWORD)) == everything
    with pytest.raises(MediaServerError) as error:
        server.top_played(limit=3, user=UserCredentials(user=FAKE_USER, secret="other"))
    assert "refused the credentials" in assert_one_line(error)


def test_playlists_in_batches_leave_other_users_alone(fake, tmp_path):
    theirs = fake.add_playlist("Theirs_automatic", owner="someone else", song_ids=["so-0-0"])
    server = Navidrome.from_config(fake_settings(fake, tmp_path), playlist_batch=2)
    ids = ["so-4-1", "so-0-0", "so-3-0", "so-1-1", "so-2-0"]
    first = server.create_playlist("Mix_automatic", ids)
    assert [len(c["songId"]) for c in fake.calls("createPlaylist")] == [2]
    assert [c["songIdToAdd"] for c in fake.calls("updatePlaylist")] == [ids[2:4], ids[4:]]
    assert fake.playlists[first].song_ids == ids
    second = server.create_playlist("Mix_automatic", ids[:1])
    assert [p.name for p in fake.playlists.values()].count("Mix_automatic") == 1
    assert fake.playlists[second].song_ids == ids[:1]
    assert [(p.name, p.track_count) for p in server.list_playlists()] == [("Mix_automatic", 1)]
    assert delete_automatic_playlists(server) == ["Mix_automatic"]
    assert list(fake.playlists) == [theirs]


def test_transient_500_is_retried(fake, tmp_path):
    server = Navidrome.from_config(fake_settings(fake, tmp_path, HTTP_RETRIES=2))
    assert server.auth_method == "token"
    fake.fail_next = 1
    assert [lib.name for lib in server.list_libraries()] == ["Music"]
    assert len(fake.calls("getMusicFolders")) == 2
    once = Navidrome.from_config(fake_settings(fake, tmp_path, HTTP_RETRIES=0))
    assert once.auth_method == "token"
    fake.fail_next = 1
    with pytest.raises(MediaServerError) as error:
        once.list_libraries()
    assert "HTTP 500" in assert_one_line(error) or "kept failing" in str(error.value)


def test_refused_and_slow_answers_give_one_line_causes(fake, tmp_path):
    fake.force_status = 401
    with pytest.raises(MediaServerError) as error:
        Navidrome.from_config(fake_settings(fake, tmp_path)).list_albums()
    assert "refused the credentials (HTTP 401)" in assert_one_line(error)
    fake.force_status = None

    server = Navidrome.from_config(fake_settings(fake, tmp_path, HTTP_TIMEOUT_SECONDS=1, HTTP_RETRIES=0))
    assert server.auth_method == "token"
    fake.delay_seconds = 30  # far beyond the timeout; the fake wakes up when the test ends
    with pytest.raises(MediaServerError) as error:
        server.list_albums()
    text = assert_one_line(error)
    assert "did not answer within 1 s" in text or "timed out" in text, text


def test_credentials_never_reach_the_logs_during_retries(fake, tmp_path, caplog):
    """urllib3 logs the whole URL of every retried request; with Subsonic that URL carries the token and salt (or,
    for old servers, the password itself). None of them may reach any log."""
    import logging
    import re

    from infra.logs import configure_logging

    configure_logging("INFO")  # what every entry point does
    caplog.set_level(logging.DEBUG)
    server = Navidrome.from_config(fake_settings(fake, tmp_path, HTTP_RETRIES=3))
    assert server.auth_method == "token"
    fake.fail_next = 2
    assert [lib.name for lib in server.list_libraries()] == ["Music"]
    with FakeSubsonic(user=FAKE_USER, password=FAKE_PASSWORD, token_auth=False) as legacy:
        old = Navidrome.from_config(fake_settings(legacy, tmp_path, HTTP_RETRIES=2))
        assert old.auth_method == "password"
        legacy.fail_next = 2
        old.list_libraries()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "Incremented Retry" in text  # the retries were logged: the check below looks at real lines
    sent = [query for _, query in fake.requests + legacy.requests]
    secrets = {v for q in sent for key in ("t", "s", "p") for v in q.get(key, [])}
    assert secrets and FAKE_PASSWORD.encode().hex() in "".join(secrets)
    leaked = sorted(s for s in secrets | {FAKE_PASSWORD} if s in text)
    assert leaked == [], leaked
    assert not re.search(r"[?&](t|s|p)=(?!\*\*\*)", text)


def read_stream(server: Navidrome, item_id: str, byte_range: str | None = None) -> tuple[int, dict[str, str], bytes]:
    stream = server.stream_audio(item_id, byte_range=byte_range)
    try:
        return stream.status, stream.headers, b"".join(stream.chunks)
    finally:
        stream.close()


def test_supysonic_streams_the_original_with_ranges(supysonic, tmp_path):
    server = Navidrome.from_config(settings(supysonic.url, tmp_path))
    track = server.album_tracks(album_named(server, "Album 0"))[0]
    original = (supysonic.music / str(track.path)).read_bytes()
    status, headers, body = read_stream(server, track.item_id)
    assert status == 200 and body == original  # format=raw: not transcoded
    status, headers, body = read_stream(server, track.item_id, "bytes=10-109")
    assert status == 206 and body == original[10:110]
    assert headers["Content-Range"] == f"bytes 10-109/{len(original)}"
    with pytest.raises(MediaServerError) as error:  # an error document with HTTP 200 is no audio
        read_stream(server, "00000000-0000-0000-0000-000000000000")
    assert "instead of audio" in assert_one_line(error)


def test_fake_subsonic_stream_error_document_is_refused(fake, tmp_path):
    server = Navidrome.from_config(fake_settings(fake, tmp_path))
    assert read_stream(server, "so-1-0")[2] == fake.albums[1].songs[0].data
    with pytest.raises(MediaServerError) as error:
        read_stream(server, "nope")
    assert "Song not found" in assert_one_line(error)
    assert fake.calls("stream")[-1]["format"] == ["raw"]
