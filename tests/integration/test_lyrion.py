"""The Lyrion adapter against a local stand-in for LMS (tests/fakes/lyrion.py: LMS's documented JSON-RPC shapes,
real files for downloads); LMS itself cannot be installed here."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config import Config, ConfigError
from mediaserver import Capability, MediaServerError, delete_automatic_playlists, get_media_server
from mediaservers.lyrion import Lyrion, file_path
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.fakes.lyrion import FakeLyrion
from tests.library import make_library

BASE_MTIME = 1_700_000_000
SERVER_ROOT = "/srv/music"


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 albums of 3 tracks; Album 2 is the newest."""
    root = tmp_path_factory.mktemp("lyrion-music")
    for path in make_library(root, albums=3, tracks_per_album=3, seconds=6):
        album = int(path.parent.name.split()[-1])
        os.utime(path, (BASE_MTIME + 100 * album, BASE_MTIME + 100 * album))
    return root


@pytest.fixture
def lms(music: Path) -> Iterator[FakeLyrion]:
    with FakeLyrion(music, server_root=SERVER_ROOT, libraries={"Early": ["Artist 0", "Artist 1"]}) as fake:
        yield fake


def lyrion(url: str, tmp_path: Path, **settings: Any) -> Lyrion:
    config = Config.from_mapping({"MEDIASERVER_TYPE": "lyrion", "LYRION_URL": url, "HTTP_RETRIES": 0,
                                  "HTTP_TIMEOUT_SECONDS": 5, "TEMP_DIR": str(tmp_path / "temp"), **settings})
    server = get_media_server(config)
    assert isinstance(server, Lyrion)
    return server


def one_line(exc: pytest.ExceptionInfo[MediaServerError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_albums_are_paged_newest_first(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    server.page_size = 2
    albums = server.list_albums()
    assert [(a.name, a.artist, a.year) for a in albums] == [("Album 2", "Artist 2", None),
                                                            ("Album 1", "Artist 1", None),
                                                            ("Album 0", "Artist 0", None)]
    assert [c[:3] for c in lms.commands()] == [["albums", 0, 2], ["albums", 2, 2]]
    assert all(c[3:] == ["sort:new", "tags:laytS"] for c in lms.commands())
    lms.requests.clear()
    assert server.list_albums(limit=1) == albums[:1]
    assert len(lms.requests) == 1  # stops paging once it has enough
    assert all(player == "" for player, _ in lms.requests)


def test_all_tracks_are_the_tracks_of_every_listed_album(lms: FakeLyrion, tmp_path: Path) -> None:
    for libraries, expected in (("", 9), ("Early", 6)):
        server = lyrion(lms.url, tmp_path, MUSIC_LIBRARIES=libraries)
        server.page_size = 4
        assert Capability.LISTS_ALL_TRACKS in server.capabilities
        by_album = {t for album in server.list_albums() for t in server.album_tracks(album.album_id)}
        pages = list(server.all_tracks(page_size=5))
        listed = [t for page in pages for t in page]
        assert len(listed) == len(by_album) == expected and set(listed) == by_album
        assert [len(page) for page in pages] == [5, expected - 5]


def test_tracks_carry_path_signature_and_numbers(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    album = server.list_albums()[2]
    tracks = server.album_tracks(album.album_id)
    assert [(t.title, t.track_number, t.artist, t.album, t.album_artist) for t in tracks] == [
        (f"Song 0-{i}", i + 1, "Artist 0", "Album 0", "Artist 0") for i in range(3)]
    assert tracks[0].path == f"{SERVER_ROOT}/Artist 0/Album 0/01 Song 0-0.flac"
    assert tracks[0].item_id == str(lms.track_by_title("Song 0-0").id) and tracks[0].album_id == album.album_id
    assert all(5.5 < (t.duration_seconds or 0) < 6.5 and t.signature for t in tracks)
    assert [t.genres for t in tracks] == [("Rock",)] * 3  # tags:g
    assert {t.artist_id for t in tracks} == {str(10 + lms.track_by_title("Song 0-0").album_id)}  # tags:s
    # The untagged WAV (no title tag) is still listed, under its file name.
    assert "03 Song 1-2" in [t.title for t in server.album_tracks(server.list_albums()[1].album_id)]
    with pytest.raises(MediaServerError, match="album 999 not found"):
        server.album_tracks("999")
    assert file_path("file:///C:/Music/a%20b.flac") == "C:/Music/a b.flac"
    assert file_path("http://radio.example/stream") is None


def test_audio_in_place_with_path_mapping_else_downloaded(lms: FakeLyrion, music: Path, tmp_path: Path) -> None:
    mapped = lyrion(lms.url, tmp_path, PATH_MAPPING=f"{SERVER_ROOT}={music}")
    track = mapped.album_tracks(mapped.list_albums()[0].album_id)[0]
    with mapped.open_audio(track) as audio:
        assert audio.access == "direct" and audio.path == music / "Artist 2/Album 2/01 Song 2-0.mp3"
    assert lms.downloads == []

    remote = lyrion(lms.url, tmp_path)
    with remote.open_audio(track) as audio:
        assert audio.access == "downloaded" and audio.path.parent == tmp_path / "temp"
        assert audio.path.suffix == ".mp3"
        assert audio.path.read_bytes() == (music / "Artist 2/Album 2/01 Song 2-0.mp3").read_bytes()
    assert not audio.path.exists() and lms.downloads == [int(track.item_id)]
    stream = remote.stream_audio(track.item_id, byte_range="bytes=-100")  # the preview's relay, Range kept
    try:
        data = (music / "Artist 2/Album 2/01 Song 2-0.mp3").read_bytes()
        assert stream.status == 206 and b"".join(stream.chunks) == data[-100:]
        assert stream.headers["Content-Type"] == "audio/mpeg"
    finally:
        stream.close()


def test_a_playlists_songs_are_replaced_in_place(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    assert Capability.KEEPS_PLAYLIST_ID in server.capabilities
    tracks = [t for a in server.list_albums() for t in server.album_tracks(a.album_id)]
    playlist_id = server.create_playlist("Evening_automatic", [t.item_id for t in tracks[:3]])
    kept = lms.add_playlist("Kept by hand", [int(tracks[0].item_id)])
    # the new songs share one with the old ones: LMS adds a track once per playlist, so the old ones go first
    wanted = [tracks[4].item_id, tracks[1].item_id]
    assert server.replace_playlist_tracks(playlist_id, wanted) == playlist_id
    assert lms.playlists[int(playlist_id)] == {"name": "Evening_automatic",
                                               "urls": [lms.tracks[int(i)].url for i in wanted]}
    assert server.playlist_tracks(playlist_id) == wanted
    assert server.replace_playlist_tracks(playlist_id, wanted) == playlist_id  # idempotent
    assert server.playlist_tracks(playlist_id) == wanted and len(lms.playlists) == 2
    assert lms.playlists[kept]["urls"] == [lms.tracks[int(tracks[0].item_id)].url]
    with pytest.raises(MediaServerError, match="no track with id 999999"):
        server.replace_playlist_tracks(playlist_id, [tracks[0].item_id, "999999"])
    assert server.playlist_tracks(playlist_id) == wanted  # an unknown song changes nothing
    with pytest.raises(MediaServerError, match="not found"):
        server.replace_playlist_tracks("424242", wanted)
    assert all(player == "" for player, _ in lms.requests)


def test_playlists_are_edited_without_a_player(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    tracks = server.album_tracks(server.list_albums()[0].album_id)
    first = server.create_playlist("Evening_automatic", [t.item_id for t in tracks] + [tracks[0].item_id])
    # LMS keeps a track once per playlist: the repeated first track is not added again.
    assert lms.playlists[int(first)]["urls"] == [lms.tracks[int(t.item_id)].url for t in tracks]
    # Creating it again replaces it (one playlist of that name, the new tracks).
    fresh = lyrion(lms.url, tmp_path)  # no URLs remembered: they are looked up by track id
    second = fresh.create_playlist("Evening_automatic", [tracks[1].item_id])
    assert [p["name"] for p in lms.playlists.values()] == ["Evening_automatic"]
    assert lms.playlists[int(second)]["urls"] == [lms.tracks[int(tracks[1].item_id)].url]
    lms.add_playlist("Kept by hand", [int(tracks[0].item_id)])
    assert {(p.name, p.track_count) for p in server.list_playlists()} == {("Evening_automatic", 1),
                                                                          ("Kept by hand", 1)}
    with pytest.raises(MediaServerError, match="no track with id 999999"):
        fresh.create_playlist("Broken_automatic", [tracks[0].item_id, "999999"])
    assert sorted(p["name"] for p in lms.playlists.values()) == ["Evening_automatic", "Kept by hand"]

    assert delete_automatic_playlists(server) == ["Evening_automatic"]
    assert [p.name for p in server.list_playlists()] == ["Kept by hand"]
    with pytest.raises(MediaServerError, match="not found"):
        server.delete_playlist(second)
    assert all(player == "" for player, _ in lms.requests)
    assert {c[0] for c in lms.commands()} <= {"albums", "titles", "playlists"}


def test_libraries_and_play_counts(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    assert [lib.name for lib in server.list_libraries()] == ["Early"]
    early = lyrion(lms.url, tmp_path, MUSIC_LIBRARIES="Early")
    assert [a.name for a in early.list_albums()] == ["Album 1", "Album 0"]
    every = server.list_albums()  # a virtual library may hold part of the music: Album 2 is in none
    assert {a.name: server.album_libraries(every).get(a.album_id) for a in every} == {
        "Album 0": "Early", "Album 1": "Early", "Album 2": None}
    with pytest.raises(MediaServerError, match="'Late' are not Lyrion libraries.*known: Early"):
        lyrion(lms.url, tmp_path, MUSIC_LIBRARIES="Late").list_albums()

    lms.track_by_title("Song 0-1").playcount = 7
    lms.track_by_title("Song 2-2").playcount = 3
    lms.track_by_title("Song 1-0").playcount = 1
    played = server.top_played(limit=2)
    assert [(lms.tracks[int(p.item_id)].title, p.play_count) for p in played] == [("Song 0-1", 7), ("Song 2-2", 3)]
    assert server.resolve_user("anna") == "anna"


def test_failures_are_one_line(music: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(MediaServerError) as down:
        lyrion(f"http://127.0.0.1:{closed}", tmp_path).list_albums()
    assert one_line(down) == f"cannot reach Lyrion at http://127.0.0.1:{closed}: connection refused"

    with FakeLyrion(music, username="admin", password="s3cret") as guarded:
        host = guarded.url.removeprefix("http://")
        with pytest.raises(MediaServerError) as refused:
            lyrion(guarded.url, tmp_path, LYRION_USER="admin", LYRION_PASSWORD="wrong").list_albums()
        assert one_line(refused) == "Lyrion refused the credentials (HTTP 401)"
        with pytest.raises(MediaServerError, match=r"HTTP 401"):
            lyrion(guarded.url, tmp_path).list_albums()
        assert len(lyrion(guarded.url, tmp_path, LYRION_USER="admin", LYRION_PASSWORD="s3cret").list_albums()) == 3
        with pytest.raises(ConfigError, match="must not hold a user or password"):
            lyrion(f"http://admin:s3cret@{host}", tmp_path)

    with FakeLyrion(music) as flaky:
        flaky.fail_next(1)
        assert len(lyrion(flaky.url, tmp_path, HTTP_RETRIES=2).list_albums()) == 3  # a transient 500 is retried
        flaky.fail_next(10)
        with pytest.raises(MediaServerError) as failing:
            lyrion(flaky.url, tmp_path, HTTP_RETRIES=1).list_albums()
        assert one_line(failing) == "Lyrion answered HTTP 500: Internal Server Error"  # after the retry
        flaky.fail_next(0)
        flaky.delay_seconds = 3
        with pytest.raises(MediaServerError) as slow:
            lyrion(flaky.url, tmp_path, HTTP_TIMEOUT_SECONDS=1).list_albums()
        assert one_line(slow) == f"Lyrion at {flaky.url} did not answer within 1 s"
    with pytest.raises(MediaServerError, match="no Lyrion URL configured"):
        lyrion("", tmp_path)


# --- analysis end to end --------------------------------------------------------------------------------------


def test_analysis_end_to_end_through_lyrion(music: Path, make_config: Callable[..., Config], db: Any,
                                            worker_processes: Callable[..., Any], tmp_path: Path) -> None:
    from app import serve

    with FakeLyrion(music, server_root=SERVER_ROOT, username="admin", password="s3cret") as lms:
        # Artist 0's folder is shared (read in place); the rest only exists on the server (downloaded).
        env = {"MEDIASERVER_TYPE": "lyrion", "LYRION_URL": lms.url, "LYRION_USER": "admin", "LYRION_PASSWORD": "s3cret",
               "PATH_MAPPING": f"{SERVER_ROOT}/Artist 0={music}/Artist 0", "TEMP_DIR": str(tmp_path / "temp"),
               "AUDIO_LOAD_TIMEOUT": "30", "REBUILD_INDEX_BATCH_SIZE": "2", "MAX_QUEUED_ANALYSIS_JOBS": "2"}
        app = serve(make_config(**env))
        try:
            start_analysis_workers(worker_processes, env)
            client = app.test_client()
            task = run_analysis(client, db)
            assert task["status"] == "SUCCESS", task
            result = task["result"]
            assert (result["albums_total"], result["tracks_analyzed"], result["tracks_failed"]) == (3, 9, 0)

            rows = db.fetch_all("SELECT item_id, file_path, audio_access FROM tracks ORDER BY item_id")
            assert len(rows) == 9
            access = {r["file_path"].split("/")[3]: r["audio_access"] for r in rows}
            assert access == {"Artist 0": "direct", "Artist 1": "downloaded", "Artist 2": "downloaded"}
            assert {int(r["item_id"]) for r in rows} == set(lms.tracks)
            assert sorted(lms.downloads) == sorted(t.id for t in lms.tracks.values() if t.top_folder != "Artist 0")
            assert not list((tmp_path / "temp").iterdir())  # downloads are deleted after analysis

            downloads = len(lms.downloads)
            again = run_analysis(client, db)
            assert again["status"] == "SUCCESS"
            assert (again["result"]["tracks_analyzed"], again["result"]["tracks_skipped"]) == (0, 9)
            assert len(lms.downloads) == downloads  # unchanged tracks are not fetched again
        finally:
            app.extensions["audiomuse"].stop_background.set()


def test_a_playlists_tracks_are_read_in_order(lms: FakeLyrion, tmp_path: Path) -> None:
    server = lyrion(lms.url, tmp_path)
    server.page_size = 2
    tracks = [t for a in server.list_albums() for t in server.album_tracks(a.album_id)][:5]
    wanted = [tracks[3].item_id, tracks[0].item_id, tracks[4].item_id]
    playlist = lms.add_playlist("Mine", [int(i) for i in wanted])
    assert server.playlist_tracks(str(playlist)) == wanted  # paged two at a time
