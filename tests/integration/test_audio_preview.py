"""The audio preview route: the file itself, HTTP Range for seeking, sign-in, and nothing outside the library."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app import serve
from mediaservers.access import file_in_library
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.library import make_library
from tests.seeded_library import insert_track, seed_arc_library


@pytest.fixture
def library(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    return cfg, tracks


def test_the_file_is_sent_and_ranges_work(library, db):
    cfg, tracks = library
    app = serve(cfg)
    try:
        client = app.test_client()
        track = next(t for t in tracks if t.path.endswith(".flac"))
        data = Path(track.path).read_bytes()
        whole = client.get(f"/api/tracks/{track.item_id}/audio")
        assert whole.status_code == 200 and whole.data == data and whole.mimetype == "audio/flac"
        assert whole.headers["Accept-Ranges"] == "bytes" and "no-store" in whole.headers["Cache-Control"]
        part = client.get(f"/api/tracks/{track.item_id}/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.data == data[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        tail = client.get(f"/api/tracks/{track.item_id}/audio", headers={"Range": f"bytes={len(data) + 5}-"})
        assert tail.status_code == 416
        unknown = client.get("/api/tracks/no-such-track/audio")
        assert unknown.status_code == 404 and "not in the analyzed library" in unknown.get_json()["error"]
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_paths_that_leave_the_library_are_not_served(library, db, tmp_path):
    cfg, tracks = library
    secret = tmp_path / "secret.txt"
    secret.write_text("not music")
    music = tmp_path / "music"
    (music / "linked.flac").symlink_to(secret)
    (music / "inside-link.flac").symlink_to(tracks[0].path)
    app = serve(cfg)
    try:
        client = app.test_client()
        for stored in (str(music / ".." / "secret.txt"), str(secret), str(music / "linked.flac"), "/etc/passwd",
                       "../secret.txt"):
            db.execute("UPDATE tracks SET file_path = %s WHERE item_id = %s", (stored, tracks[1].item_id))
            answer = client.get(f"/api/tracks/{tracks[1].item_id}/audio")
            assert answer.status_code == 404 and "cannot be read here" in answer.get_json()["error"], stored
        db.execute("UPDATE tracks SET file_path = %s WHERE item_id = %s",
                   (str(music / "inside-link.flac"), tracks[1].item_id))
        linked = client.get(f"/api/tracks/{tracks[1].item_id}/audio")
        assert linked.status_code == 200 and linked.data == Path(tracks[0].path).read_bytes()
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_preview_needs_sign_in_when_a_password_is_set(make_config, db, redis, tmp_path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"),
                      ADMIN_PASSWORD="correct horse battery staple")
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    try:
        answer = app.test_client().get(f"/api/tracks/{tracks[0].item_id}/audio")
        assert answer.status_code == 401
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_mapped_server_paths_are_confined_to_the_mapped_folder(tmp_path):
    music = tmp_path / "srv" / "music"
    music.mkdir(parents=True)
    (music / "a.flac").write_bytes(b"fLaC")
    (tmp_path / "srv" / "other.flac").write_bytes(b"fLaC")
    os.symlink(tmp_path / "srv" / "other.flac", music / "escape.flac")
    mapping = [("/data/music", str(music))]
    assert file_in_library("/data/music/a.flac", local_folder=None, mapping=mapping) == music / "a.flac"
    for server_path in ("/data/music/../other.flac", "/data/music/escape.flac", "/elsewhere/a.flac",
                        "/data/music/missing.flac", "/data/music/a.flac\x00"):
        assert file_in_library(server_path, local_folder=None, mapping=mapping) is None, server_path
    assert file_in_library("a.flac", local_folder=str(music), mapping=[]) == music / "a.flac"  # MPD's relative
    assert file_in_library("../other.flac", local_folder=str(music), mapping=[]) is None


def test_a_media_servers_track_is_relayed_from_its_stream(make_config, db, redis, tmp_path):
    media = tmp_path / "media"
    make_library(media / "Music", albums=1, tracks_per_album=1, seconds=2)
    with FakeJellyfin(media, libraries={"Music": "music"}) as fake:
        item_id, file = next(iter(fake.files.items()))
        data = file.read_bytes()
        cfg = make_config(MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL=fake.url, JELLYFIN_USER_ID="Alice",
                          JELLYFIN_TOKEN=API_KEY, HTTP_RETRIES=0, HTTP_TIMEOUT_SECONDS=5)
        insert_track(db, item_id=item_id, title="Relayed", artist="A", vector=np.ones(16),
                     path=fake.server_path(item_id))  # the server's path, not readable here: streamed
        app = serve(cfg)
        try:
            client = app.test_client()
            whole = client.get(f"/api/tracks/{item_id}/audio")
            assert whole.status_code == 200 and whole.data == data and "no-store" in whole.headers["Cache-Control"]
            part = client.get(f"/api/tracks/{item_id}/audio", headers={"Range": "bytes=100-199"})
            assert part.status_code == 206 and part.data == data[100:200]
            assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
            assert fake.calls_to("/stream")[-1].path == f"/Audio/{item_id}/stream"
            fake.fault(path_contains="/stream", status=500)
            down = client.get(f"/api/tracks/{item_id}/audio")
            assert down.status_code == 502 and "Jellyfin" in down.get_json()["error"]
        finally:
            app.extensions["audiomuse"].stop_background.set()


def test_a_file_whose_name_holds_a_newline_is_previewed(library, db, tmp_path: Path):
    cfg, tracks = library
    source = Path(next(t for t in tracks if t.path.endswith(".flac")).path)
    odd = source.with_name("two\nlines\r.flac")
    odd.write_bytes(source.read_bytes())
    insert_track(db, item_id="newline-track", title="Two lines", artist="A", vector=np.ones(200), path=str(odd))
    app = serve(cfg)
    try:
        answer = app.test_client().get("/api/tracks/newline-track/audio")
        assert answer.status_code == 200 and answer.data == odd.read_bytes(), answer.get_data(as_text=True)[:300]
        assert answer.headers["Content-Disposition"] == 'inline; filename="two lines .flac"'
    finally:
        app.extensions["audiomuse"].stop_background.set()
