"""The Jellyfin and Emby adapters against a local fake server with the documented shapes (tests/fakes/jellyfin.py),
backed by real generated audio files; each test runs once per flavour. The last test runs a whole analysis through
real RQ workers, PostgreSQL and Redis with MEDIASERVER_TYPE=jellyfin / emby."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app import serve
from config import Config
from mediaserver import Capability, MediaServerError, UserCredentials, delete_automatic_playlists, get_media_server
from mediaservers.emby import Emby
from mediaservers.jellyfin import Jellyfin
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import wait_for
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.library import make_library, rhythmic_piece, write_track

ADAPTERS = {"jellyfin": Jellyfin, "emby": Emby}


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two music libraries: Music (3 albums × 2 tracks, FLAC/Ogg/MP3/WAV) and Spoken (2 one-track albums)."""
    root = tmp_path_factory.mktemp("jellyfin-media")
    make_library(root / "Music", albums=3, tracks_per_album=2, seconds=5)
    for i in range(2):
        write_track(root / "Spoken" / "Narrator" / f"Stories {i}" / "01 Chapter.flac",
                    rhythmic_piece(bpm=80, seconds=2, root_hz=150 + 10 * i, seed=90 + i),
                    title=f"Chapter {i}", artist="Narrator", album=f"Stories {i}", track_number=1)
    return root


@pytest.fixture(params=["jellyfin", "emby"])
def fake(request: pytest.FixtureRequest, media_root: Path) -> Iterator[FakeJellyfin]:
    libraries = {"Music": "music", "Spoken": "music", "Films": "movies"}
    with FakeJellyfin(media_root, flavour=request.param, libraries=libraries) as server:
        yield server


def server_settings(fake: FakeJellyfin, *, user: str = "Alice", token: str = API_KEY) -> dict[str, str]:
    """MEDIASERVER_TYPE and the flavour's URL/user/token settings."""
    name = fake.flavour.upper()
    return {"MEDIASERVER_TYPE": fake.flavour, f"{name}_URL": fake.url, f"{name}_USER_ID": user,
            f"{name}_TOKEN": token}


def make_adapter(fake: FakeJellyfin, tmp_path: Path, *, page_size: int | None = None,
                 playlist_batch_size: int | None = None, user: str | None = None, token: str = API_KEY,
                 **overrides: Any) -> Jellyfin:
    """The adapter from a Config, through get_media_server unless a page or batch size is given."""
    values: dict[str, Any] = {**server_settings(fake, user=user or fake.users["Alice"], token=token),
                              "TEMP_DIR": str(tmp_path / "temp"), "HTTP_TIMEOUT_SECONDS": 5, "HTTP_RETRIES": 1}
    values.update(overrides)
    config = Config.from_mapping(values)
    cls = ADAPTERS[fake.flavour]
    if page_size or playlist_batch_size:
        return cls.from_config(config, page_size=page_size or 500, playlist_batch_size=playlist_batch_size or 100)
    server = get_media_server(config)
    assert type(server) is cls and server.kind == fake.flavour
    return server


def one_line_error(excinfo: pytest.ExceptionInfo[MediaServerError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# --- albums, libraries, tracks ------------------------------------------------------------------------------------
def test_all_tracks_are_the_tracks_of_every_listed_album(fake: FakeJellyfin, tmp_path: Path) -> None:
    for libraries in ("", "Spoken"):
        server = make_adapter(fake, tmp_path, MUSIC_LIBRARIES=libraries)
        assert Capability.LISTS_ALL_TRACKS in server.capabilities
        by_album = {t for album in server.list_albums() for t in server.album_tracks(album.album_id)}
        pages = list(server.all_tracks(page_size=4))
        listed = [t for page in pages for t in page]
        assert len(listed) == len(by_album) == (8 if not libraries else 2) and set(listed) == by_album
        assert all(t.signature and t.path for t in listed)
    assert [len(page) for page in pages] == [2]
    calls = fake.calls_to("/Items", "GET")
    assert calls[-1].query["IncludeItemTypes"] == "Audio" and calls[-1].query["Limit"] == "4"


def test_albums_are_paged_newest_first(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, page_size=2)
    albums = server.list_albums()
    expected = fake.albums_newest_first()
    assert [a.album_id for a in albums] == [a["Id"] for a in expected] and len(albums) == 5
    assert [a.added_at or 0 for a in albums] == sorted((a.added_at or 0 for a in albums), reverse=True)
    assert albums[-1].name == "Album 0" and albums[-1].artist == "Artist 0" and albums[-1].year == 1990
    pages = [(c.query["StartIndex"], c.query["Limit"]) for c in fake.calls_to("/Items")
             if c.query.get("IncludeItemTypes") == "MusicAlbum"]
    assert pages == [("0", "2"), ("2", "2"), ("4", "2")]
    assert all(c.path.startswith(f"/Users/{fake.users['Alice']}/") for c in fake.calls_to("/Items"))

    fake.calls.clear()
    newest = server.list_albums(limit=3)
    assert [a.album_id for a in newest] == [a["Id"] for a in expected[:3]]
    assert [(c.query["StartIndex"], c.query["Limit"]) for c in fake.calls_to("/Items")] == [("0", "2"), ("2", "1")]


def test_music_libraries_filter_albums(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, MUSIC_LIBRARIES="music")  # names match case-insensitively
    assert [lib.name for lib in server.list_libraries()] == ["Music", "Spoken"]  # Films is not music
    music_id = next(f["ItemId"] for f in fake.folders if f["Name"] == "Music")
    albums = server.list_albums()
    assert [a.album_id for a in albums] == [a["Id"] for a in fake.albums_newest_first("Music")]
    assert len(albums) == 3
    assert {c.query.get("ParentId") for c in fake.calls_to("/Items")} == {music_id}

    both = make_adapter(fake, tmp_path, MUSIC_LIBRARIES="Spoken, Music")
    assert [a.album_id for a in both.list_albums()] == [a["Id"] for a in fake.albums_newest_first()]
    # which library each album is in (the library scope of requests): one listing per library
    every = make_adapter(fake, tmp_path)
    assert every.album_libraries(every.list_albums()) == {
        a["Id"]: name for name in ("Music", "Spoken") for a in fake.albums_newest_first(name)}
    assert set(server.album_libraries(albums).values()) == {"Music"}
    assert [a.name for a in both.list_albums(limit=2)] == ["Stories 1", "Stories 0"]

    with pytest.raises(MediaServerError) as excinfo:
        make_adapter(fake, tmp_path, MUSIC_LIBRARIES="Music,Podcasts").list_albums()
    message = one_line_error(excinfo)
    assert "Podcasts" in message and "Music" in message and "Films" not in message


def test_album_tracks_carry_the_metadata(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path)
    album = next(a for a in fake.albums if a["Name"] == "Album 2")  # MP3 + untagged WAV
    tracks = server.album_tracks(album["Id"])
    assert [t.title for t in tracks] == ["Song 2-0", "Song 2-1"]
    assert [t.track_number for t in tracks] == [1, 2]
    for track in tracks:
        assert (track.artist, track.album_artist, track.album, track.album_id) == \
               ("Artist 2", "Artist 2", "Album 2", album["Id"])
        assert track.year == album["ProductionYear"]
        assert track.path == fake.server_path(track.item_id)
        assert track.path.startswith(f"{fake.server_root}/Music/Artist 2/Album 2/")
        assert track.duration_seconds == pytest.approx(5.0, abs=0.1)
        assert track.signature and str(fake.files[track.item_id].stat().st_size) in track.signature
        assert track.artist_id == hashlib.md5(b"artist:Artist 2").hexdigest()  # ArtistItems[0].Id
    assert [t.genres for t in tracks] == [("Electronic",), ()]  # the WAV file has no tags
    assert server.album_tracks(album["Id"]) == tracks  # the signature is stable while nothing changes
    fields = {c.query.get("Fields") for c in fake.calls_to("/Items")}
    assert fields == {"Path,DateCreated,MediaSources,Etag,Genres"}


# --- audio access ---------------------------------------------------------------------------------------------------
def test_open_audio_downloads_without_a_mapping(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path)
    track = server.album_tracks(fake.albums_newest_first("Music")[0]["Id"])[0]
    with server.open_audio(track) as audio:
        assert audio.access == "downloaded"
        assert audio.path.parent == tmp_path / "temp" and audio.path.suffix == Path(track.path or "").suffix
        assert audio.path.read_bytes() == fake.files[track.item_id].read_bytes()
    assert not audio.path.exists() and not list((tmp_path / "temp").iterdir())
    assert [c.path for c in fake.calls_to("/Download")] == [f"/Items/{track.item_id}/Download"]

    fake.fault(path_contains="/Download", status=500)
    with pytest.raises(MediaServerError) as excinfo, server.open_audio(track):
        pass
    assert "HTTP 500" in one_line_error(excinfo)
    assert not list((tmp_path / "temp").iterdir())  # no half file left behind


def test_stream_audio_relays_the_original_with_ranges(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path)
    track = server.album_tracks(fake.albums_newest_first("Music")[0]["Id"])[0]
    data = fake.files[track.item_id].read_bytes()
    stream = server.stream_audio(track.item_id, byte_range="bytes=5-")
    try:
        assert stream.status == 206 and b"".join(stream.chunks) == data[5:]
        assert stream.headers["Content-Range"] == f"bytes 5-{len(data) - 1}/{len(data)}"
    finally:
        stream.close()
    assert fake.calls_to("/stream")[-1].query == {"static": "true"}
    with pytest.raises(MediaServerError) as excinfo:
        server.stream_audio("no-such-item")
    assert "HTTP 404" in one_line_error(excinfo)


def test_open_audio_reads_in_place_through_path_mapping(fake: FakeJellyfin, tmp_path: Path,
                                                        media_root: Path) -> None:
    server = make_adapter(fake, tmp_path, PATH_MAPPING=f"{fake.server_root}={media_root}")
    for album in fake.albums_newest_first("Music"):
        for track in server.album_tracks(album["Id"]):
            with server.open_audio(track) as audio:
                assert audio.access == "direct" and audio.path == fake.files[track.item_id]
    assert not fake.calls_to("/Download")


# --- playlists ------------------------------------------------------------------------------------------------------
def test_playlists_create_replace_list_delete(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, playlist_batch_size=10)
    track_ids = [t["Id"] for t in fake.tracks]
    many = (track_ids * 4)[:25]
    playlist_id = server.create_playlist("Road trip_automatic", many)
    stored = fake.playlists[playlist_id]
    assert (stored.name, stored.item_ids, stored.owner_id) == ("Road trip_automatic", many, fake.users["Alice"])
    assert len(fake.calls_to("/Playlists", "POST")) == 3  # create with 10, then add 10 and 5
    assert [(p.playlist_id, p.name, p.track_count) for p in server.list_playlists()] == \
           [(playlist_id, "Road trip_automatic", 25)]

    replaced = server.create_playlist("Road trip_automatic", track_ids[:3])
    assert replaced != playlist_id
    assert [(p.name, p.item_ids) for p in fake.playlists.values()] == [("Road trip_automatic", track_ids[:3])]

    server.delete_playlist(replaced)
    assert fake.playlists == {} and server.list_playlists() == []
    with pytest.raises(MediaServerError) as excinfo:
        server.delete_playlist(replaced)
    assert "404" in one_line_error(excinfo)


def test_replacing_a_playlists_songs_keeps_its_id(fake: FakeJellyfin, tmp_path: Path) -> None:
    """The documented calls: the entries go by their PlaylistItemId (DELETE /Playlists/{id}/Items?EntryIds=…),
    then the new songs are added (POST /Playlists/{id}/Items?Ids=…), both in batches; same id, name and owner."""
    server = make_adapter(fake, tmp_path, playlist_batch_size=2, page_size=2)
    assert Capability.KEEPS_PLAYLIST_ID in server.capabilities
    ids = [t["Id"] for t in fake.tracks]
    playlist_id = server.create_playlist("Calm_automatic", ids[:3])
    other = server.create_playlist("Party_automatic", ids[3:5])
    old_entries = list(fake.playlists[playlist_id].entry_ids)
    fake.calls.clear()
    assert server.replace_playlist_tracks(playlist_id, [ids[5], ids[1], ids[5]]) == playlist_id
    stored = fake.playlists[playlist_id]
    assert (stored.name, stored.item_ids, stored.owner_id) == ("Calm_automatic", [ids[5], ids[1], ids[5]],
                                                               fake.users["Alice"])
    assert server.playlist_tracks(playlist_id) == [ids[5], ids[1], ids[5]]
    removals = fake.calls_to(f"/Playlists/{playlist_id}/Items", "DELETE")
    assert [c.query["EntryIds"].split(",") for c in removals] == [old_entries[:2], old_entries[2:]]
    assert len(fake.calls_to(f"/Playlists/{playlist_id}/Items", "POST")) == 2  # 3 songs in batches of 2
    assert fake.playlists[other].item_ids == ids[3:5]  # the other playlist is untouched
    assert server.replace_playlist_tracks(playlist_id, [ids[5], ids[1], ids[5]]) == playlist_id  # idempotent
    assert fake.playlists[playlist_id].item_ids == [ids[5], ids[1], ids[5]] and len(fake.playlists) == 2
    with pytest.raises(MediaServerError) as excinfo:
        server.replace_playlist_tracks("0" * 32, ids[:1])
    assert "404" in one_line_error(excinfo)


def test_without_entry_ids_a_replaced_playlist_is_made_anew(fake: FakeJellyfin, tmp_path: Path) -> None:
    """A server that names no entries cannot have them removed: a new playlist of the same name takes the songs
    (its id is returned), and the old one is gone."""
    server = make_adapter(fake, tmp_path)
    ids = [t["Id"] for t in fake.tracks]
    playlist_id = server.create_playlist("Calm_automatic", ids[:3])
    fake.send_entry_ids = False
    new_id = server.replace_playlist_tracks(playlist_id, ids[3:5])
    assert new_id != playlist_id
    assert [(p.playlist_id, p.name, p.item_ids) for p in fake.playlists.values()] == [
        (new_id, "Calm_automatic", ids[3:5])]
    assert not fake.calls_to(f"/Playlists/{playlist_id}/Items", "DELETE")


def test_a_users_playlist_is_read_in_order_page_by_page(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, page_size=2)
    wanted = [fake.tracks[4]["Id"], fake.tracks[0]["Id"], fake.tracks[2]["Id"]]
    playlist_id = fake.add_playlist("By hand", wanted)
    assert server.playlist_tracks(playlist_id) == wanted
    assert len(fake.calls_to(f"/Playlists/{playlist_id}/Items", "GET")) == 2


def test_delete_automatic_playlists_deletes_nothing_else(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path)
    ids = [t["Id"] for t in fake.tracks]
    mine = fake.add_playlist("Sunday morning", ids[:2])
    almost = fake.add_playlist("automatic favourites", ids[:1])
    server.create_playlist("Calm_automatic", ids[:3])
    server.create_playlist("Party_automatic", ids[3:5])
    assert sorted(delete_automatic_playlists(server)) == ["Calm_automatic", "Party_automatic"]
    assert set(fake.playlists) == {mine, almost}
    assert fake.playlists[mine].item_ids == ids[:2]


# --- users and play history -----------------------------------------------------------------------------------------
def test_user_name_is_resolved_to_its_id(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, user="alice")
    assert server.resolve_user("BOB") == fake.users["Bob"]
    assert server.user_id == fake.users["Alice"]
    assert len(server.list_albums()) == 5
    assert len([c for c in fake.calls if c.path == "/Users"]) == 2  # one look-up each, no more
    with pytest.raises(MediaServerError) as excinfo:
        make_adapter(fake, tmp_path, user="Carol").list_albums()
    message = one_line_error(excinfo)
    assert "'Carol'" in message and "Alice" in message


def test_top_played_per_user(fake: FakeJellyfin, tmp_path: Path) -> None:
    first, second, third = (t["Id"] for t in fake.tracks[:3])
    when = datetime(2024, 5, 1, 20, 30, 15, tzinfo=UTC)
    fake.set_played("Alice", second, 7, when)
    fake.set_played("Alice", first, 2)
    fake.set_played("Bob", third, 4, when)
    server = make_adapter(fake, tmp_path)
    top = server.top_played(limit=10)
    assert [(p.item_id, p.play_count) for p in top] == [(second, 7), (first, 2)]
    assert top[0].last_played == when.timestamp() and top[1].last_played is None
    assert [p.item_id for p in server.top_played(limit=1)] == [second]

    bob = server.top_played(limit=10, user=UserCredentials("bob", "bob-token"))
    assert [(p.item_id, p.play_count, p.last_played) for p in bob] == [(third, 4, when.timestamp())]
    assert fake.calls[-1].token == "bob-token" and fake.users["Bob"] in fake.calls[-1].path
    # A user's own token does not read another user's library.
    with pytest.raises(MediaServerError) as excinfo:
        server.top_played(limit=5, user=UserCredentials(fake.users["Alice"], "bob-token"))
    assert "403" in one_line_error(excinfo)


# --- failures -------------------------------------------------------------------------------------------------------
def test_wrong_token_is_a_one_line_error(fake: FakeJellyfin, tmp_path: Path) -> None:
    with pytest.raises(MediaServerError) as excinfo:
        make_adapter(fake, tmp_path, token="not-the-key").list_albums()
    message = one_line_error(excinfo)
    assert fake.flavour.capitalize() in message and "credentials" in message and "401" in message
    assert "not-the-key" not in message


def test_server_down_is_a_one_line_error(fake: FakeJellyfin, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    down: dict[str, Any] = {f"{fake.flavour.upper()}_URL": f"http://127.0.0.1:{closed_port}"}
    server = make_adapter(fake, tmp_path, HTTP_RETRIES=0, HTTP_TIMEOUT_SECONDS=2, **down)
    with pytest.raises(MediaServerError) as excinfo:
        server.list_albums()
    message = one_line_error(excinfo)
    assert f"127.0.0.1:{closed_port}" in message and "connection refused" in message


def test_http_errors_and_a_transient_failure(fake: FakeJellyfin, tmp_path: Path) -> None:
    server = make_adapter(fake, tmp_path, HTTP_RETRIES=2)
    expected = [a["Id"] for a in fake.albums_newest_first()]

    fake.fault(path_contains="/Items", status=500, times=1)  # the retry hides one failure
    assert [a.album_id for a in server.list_albums()] == expected
    assert len(fake.calls_to("/Items")) == 2

    fake.faults.clear()
    fake.fault(path_contains="/Library/VirtualFolders", status=404)
    with pytest.raises(MediaServerError) as excinfo:
        server.list_libraries()
    assert "/Library/VirtualFolders" in one_line_error(excinfo) and "404" in str(excinfo.value)

    fake.faults.clear()
    fake.fault(path_contains="/Items", status=500)
    failing = make_adapter(fake, tmp_path, HTTP_RETRIES=1)
    with pytest.raises(MediaServerError) as excinfo:
        failing.list_albums()
    assert "HTTP 500" in one_line_error(excinfo) and "Error processing request." in str(excinfo.value)


def test_slow_answer_times_out(fake: FakeJellyfin, tmp_path: Path) -> None:
    fake.fault(path_contains="/Library/VirtualFolders", delay=20)
    server = make_adapter(fake, tmp_path, HTTP_TIMEOUT_SECONDS=1, HTTP_RETRIES=0)
    with pytest.raises(MediaServerError) as excinfo:
        server.list_libraries()
    message = one_line_error(excinfo)
    assert fake.url in message and ("timed out" in message or "did not answer" in message)


# --- analysis end to end --------------------------------------------------------------------------------------------


def test_analysis_end_to_end(fake: FakeJellyfin, make_config: Any, worker_processes: Any, db: Any,
                             tmp_path: Path) -> None:
    env = {**server_settings(fake, user="alice"), "MUSIC_LIBRARIES": "Music", "TEMP_DIR": str(tmp_path / "temp"),
           "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30", "HTTP_TIMEOUT_SECONDS": "20",
           "REBUILD_INDEX_BATCH_SIZE": "2", "MAX_QUEUED_ANALYSIS_JOBS": "2"}
    app = serve(make_config(**env))
    try:
        client = app.test_client()
        start_analysis_workers(worker_processes, env)
        task = run_analysis(client, db)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert (result["albums_total"], result["tracks_analyzed"], result["tracks_failed"]) == (3, 6, 0), result
        rows = db.fetch_all("SELECT * FROM tracks ORDER BY item_id")
        music = {a["Id"] for a in fake.albums_newest_first("Music")}
        expected = {t["Id"]: t for t in fake.tracks if t["AlbumId"] in music}
        assert {r["item_id"] for r in rows} == set(expected)
        for row in rows:
            assert row["audio_access"] == "downloaded" and row["content_fingerprint"]
            assert row["file_path"] == expected[row["item_id"]]["_path"] and row["album_id"] in music
        assert len(fake.calls_to("/Download")) == 6
        assert not list((tmp_path / "temp").iterdir())

        db.execute("UPDATE tracks SET artist_id = NULL")  # as on an install analyzed before artist ids were kept
        again = run_analysis(client, db)
        assert again["status"] == "SUCCESS"
        assert (again["result"]["tracks_analyzed"], again["result"]["tracks_skipped"]) == (0, 6)
        assert again["result"]["albums_unchanged"] == 3
        assert len(fake.calls_to("/Download")) == 6  # unchanged tracks are not even downloaded
        # the unchanged tracks got Jellyfin's artist ids, and the plugins' artist calls find the artists by them
        stored = db.fetch_all("SELECT artist, artist_id FROM tracks")
        assert all(r["artist_id"] == hashlib.md5(f"artist:{r['artist']}".encode()).hexdigest() for r in stored)
        artist_id = stored[0]["artist_id"]
        similar = wait_for(lambda: (r := client.get(f"/api/similar_artists?artist_id={artist_id}")).status_code
                           == 200 and r, what="the artist model with Jellyfin's artist ids")
        assert all(isinstance(row["artist_id"], str) for row in similar.get_json())
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_emby_url_may_be_given_with_its_prefix(media_root: Path, tmp_path: Path) -> None:
    with FakeJellyfin(media_root, flavour="emby") as fake:
        server = Emby(fake.url + "/emby/", token=API_KEY, user="Bob", temp_dir=tmp_path)
        assert len(server.list_albums()) == 5
        assert all(not c.path.startswith("/emby") for c in fake.calls)  # the fake strips one /emby: no doubling
