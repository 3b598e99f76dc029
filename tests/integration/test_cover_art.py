"""Cover art: from a local folder's cover file or the picture in the file, from a real MPD (albumart, readpicture),
resized and kept on disk within its bound, a placeholder when there is none; behind sign-in."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from mutagen.flac import FLAC, Picture
from PIL import Image

from app import serve
from config import Config
from mediaserver import Capability, CoverRequest
from mediaservers.emby import Emby
from mediaservers.jellyfin import Jellyfin
from mediaservers.local import LocalFolder
from mediaservers.lyrion import Lyrion
from mediaservers.mpd import Mpd
from services.cover_art import CoverCache, resized
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.fakes.lyrion import FakeLyrion
from tests.integration.test_mpd import start_mpd
from tests.library import make_library
from tests.seeded_library import insert_track


def picture(width: int, height: int, colour: tuple[int, int, int], kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, kind)
    return out.getvalue()


def embed(path: Path, data: bytes) -> None:
    tags = FLAC(path)
    block = Picture()
    block.type, block.mime, block.data = 3, "image/png", data
    tags.add_picture(block)
    tags.save()


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Album 0 with a cover.jpg (800×600 red), album 1 whose FLAC files hold a picture (blue PNG), album 2 with
    none."""
    root = tmp_path / "music"
    paths = make_library(root, albums=3, tracks_per_album=4, seconds=1)
    (root / "Artist 0" / "Album 0" / "cover.jpg").write_bytes(picture(800, 600, (220, 20, 20)))
    for path in paths:
        if path.parent.name == "Album 1" and path.suffix == ".flac":
            embed(path, picture(300, 300, (20, 20, 220), "PNG"))
    return root


def colour_of(jpeg: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB").getpixel((image.width // 2, image.height // 2))  # type: ignore[return-value]


def test_covers_from_a_local_folder_are_resized_kept_and_a_placeholder_stands_in(music, make_config, db,
                                                                                 tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(music), PLAYLIST_DIR=str(tmp_path / "playlists"), DATA_DIR=str(tmp_path / "d"))
    folder = LocalFolder(music, playlist_dir=tmp_path / "playlists")
    tracks = {t.path: t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)}
    for t in tracks.values():
        insert_track(db, item_id=t.item_id, title=t.title, artist=t.artist, vector=[1.0, 0.0], path=t.path or "")
    by_album = {name: [t for p, t in tracks.items() if f"/{name}/" in p] for name in ("Album 0", "Album 1", "Album 2")}
    flac_1 = next(t for t in by_album["Album 1"] if t.path.endswith(".flac"))
    ogg_1 = next(t for t in by_album["Album 1"] if not t.path.endswith(".flac"))
    app = serve(cfg)
    try:
        client = app.test_client()
        answer = client.get(f"/api/tracks/{by_album['Album 0'][0].item_id}/cover?size=300")
        assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
        with Image.open(io.BytesIO(answer.data)) as image:
            assert image.size == (300, 225)  # fitted, aspect kept
        red = colour_of(answer.data)
        assert red[0] > 180 and red[1] < 60 and red[2] < 60
        assert "private" in answer.headers["Cache-Control"] and answer.headers["ETag"]

        embedded = client.get(f"/api/tracks/{flac_1.item_id}/cover?size=64")
        assert embedded.mimetype == "image/jpeg" and colour_of(embedded.data)[2] > 180
        with Image.open(io.BytesIO(embedded.data)) as image:
            assert image.size == (64, 64)

        for song in (ogg_1, by_album["Album 2"][0]):  # no cover file, no picture in the file
            none = client.get(f"/api/tracks/{song.item_id}/cover")
            assert none.status_code == 200 and none.mimetype == "image/svg+xml"
            assert none.headers["X-Cover"].startswith("placeholder")

        # kept: the cover file gone, the same answer (not the placeholder), and a 304 for the browser's copy
        (music / "Artist 0" / "Album 0" / "cover.jpg").unlink()
        again = client.get(f"/api/tracks/{by_album['Album 0'][0].item_id}/cover?size=300")
        assert again.data == answer.data
        assert client.get(f"/api/tracks/{by_album['Album 0'][0].item_id}/cover?size=300",
                          headers={"If-None-Match": answer.headers["ETag"]}).status_code == 304
        assert list((tmp_path / "d" / "covers").glob("*/*.jpg"))

        assert client.get(f"/api/tracks/{flac_1.item_id}/cover?size=65").status_code == 400
        assert client.get("/api/tracks/nothing-like-it/cover").status_code == 404
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_covers_need_a_sign_in(music, make_config, db, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(music), ADMIN_PASSWORD="a-long-enough-password")
    app = serve(cfg)
    try:
        answer = app.test_client().get("/api/tracks/anything/cover")
        assert answer.status_code == 401
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_mpd_gives_the_folder_cover_and_the_picture_in_the_file(music, tmp_path: Path):
    server = start_mpd(tmp_path / "mpd", music, stickers=False, songs=12)
    try:
        mpd = Mpd("127.0.0.1", server.port, music_directory=music, timeout=10)
        songs = [t for a in mpd.list_albums() for t in mpd.album_tracks(a.album_id)]
        album_0, album_1, album_2 = ([t for t in songs if t.item_id.startswith(f"Artist {a}/Album {a}/")]
                                    for a in range(3))
        folder_cover = mpd.cover_art(CoverRequest(album_0[0].item_id, path=album_0[0].path))
        assert folder_cover is not None and colour_of(resized(folder_cover, 64))[0] > 180
        flac = next((t for t in album_1 if (t.path or t.item_id).endswith(".flac")), None)
        assert flac is not None, [(t.item_id, t.path) for t in album_1]
        in_file = mpd.cover_art(CoverRequest(flac.item_id, path=flac.path))
        assert in_file is not None and colour_of(resized(in_file, 64))[2] > 180
        assert mpd.cover_art(CoverRequest(album_2[0].item_id, path=album_2[0].path)) is None
    finally:
        server.stop()


@pytest.mark.parametrize("flavour", ["jellyfin", "emby"])
def test_jellyfin_and_emby_give_the_albums_primary_image(music, flavour):
    with FakeJellyfin(music.parent, flavour=flavour, libraries={"music": "music"}) as fake:
        server = Jellyfin(fake.url, token=API_KEY, user="Alice") if flavour == "jellyfin" else \
            Emby(fake.url, token=API_KEY, user="Alice")
        assert Capability.COVER_ART in server.capabilities
        songs = {t["Id"]: t for t in fake.tracks}
        in_album_0 = next(t for t in songs.values() if t["Album"] == "Album 0")
        in_album_2 = next(t for t in songs.values() if t["Album"] == "Album 2")
        found = server.cover_art(CoverRequest(in_album_0["Id"], album_id=in_album_0["AlbumId"]))
        assert found is not None and colour_of(resized(found, 64))[0] > 180
        assert server.cover_art(CoverRequest(in_album_2["Id"], album_id=in_album_2["AlbumId"])) is None
        asked = [c.path for c in fake.calls if "Images" in c.path]
        assert f"/Items/{in_album_0['Id']}/Images/Primary" in asked  # the song's own first, then its album's
        assert f"/Items/{in_album_0['AlbumId']}/Images/Primary" in asked


def test_lyrion_gives_the_picture_it_shows_for_a_song(music, tmp_path):
    with FakeLyrion(music) as fake:
        server = Lyrion.from_config(Config.from_mapping({"MEDIASERVER_TYPE": "lyrion", "LYRION_URL": fake.url,
                                                         "HTTP_RETRIES": 0, "TEMP_DIR": str(tmp_path / "t")}))
        assert Capability.COVER_ART in server.capabilities
        in_album_0 = next(t for t in fake.tracks.values() if t.file.parent.name == "Album 0")
        in_album_2 = next(t for t in fake.tracks.values() if t.file.parent.name == "Album 2")
        found = server.cover_art(CoverRequest(str(in_album_0.id)))
        assert found is not None and colour_of(resized(found, 64))[0] > 180
        assert server.cover_art(CoverRequest(str(in_album_2.id))) is None


def test_the_cache_keeps_within_its_bound_and_drops_the_least_recently_used(tmp_path: Path):
    cache = CoverCache(tmp_path / "covers", max_bytes=50_000)
    blob = b"x" * 10_000
    for i in range(4):
        cache.put(f"song {i}", blob)
    assert cache.get("song 0")  # used: song 1 is now the least recently used
    cache.put("song 4", blob)
    cache.put("song 5", blob)  # 60 kB: the oldest go until 90 % of the bound is left
    kept = sum(entry.stat().st_size for entry in (tmp_path / "covers").glob("*/*.jpg"))
    assert kept <= 45_000
    assert [cache.get(f"song {i}") is not None for i in range(6)] == [True, False, False, True, True, True]
    cache.put("no picture", None)
    assert cache.get("no picture") is False
    with pytest.raises(ValueError):
        resized(b"not a picture", 64)
