"""The local music folder adapter: albums, tags, stable ids, .m3u8 playlists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mediaserver import Capability, MediaServerError, delete_automatic_playlists
from mediaservers.local import LocalFolder, item_id_for
from tests.library import make_library


@pytest.fixture
def folder(tmp_path: Path) -> LocalFolder:
    make_library(tmp_path / "music", albums=2, tracks_per_album=3, seconds=2)
    return LocalFolder(tmp_path / "music", playlist_dir=tmp_path / "playlists")


def test_albums_and_tracks_come_from_folders_and_tags(folder: LocalFolder) -> None:
    albums = folder.list_albums()
    assert [a.album_id for a in albums] == ["Artist 1/Album 1", "Artist 0/Album 0"]  # most recent first
    assert albums[0].name == "Album 1" and albums[0].artist == "Artist 1"
    assert folder.list_albums(limit=1) == albums[:1] and folder.list_albums(limit=0) == albums
    tracks = folder.album_tracks("Artist 0/Album 0")
    assert [t.title for t in tracks] == ["Song 0-0", "Song 0-1", "Song 0-2"]
    assert [t.track_number for t in tracks] == [1, 2, 3]
    assert all(t.artist == "Artist 0" and t.duration_seconds and t.signature for t in tracks)
    assert tracks[0].item_id == item_id_for("Artist 0/Album 0/01 Song 0-0.flac")
    assert [t.genres for t in tracks] == [("Rock",)] * 3
    assert {t.genres for t in folder.album_tracks("Artist 1/Album 1")} == {("Jazz", "Blues"), ()}  # WAV: no tags


def test_ids_are_stable_when_the_folder_moves(tmp_path: Path, folder: LocalFolder) -> None:
    before = [t.item_id for t in folder.album_tracks("Artist 0/Album 0")]
    (tmp_path / "music").rename(tmp_path / "moved")
    moved = LocalFolder(tmp_path / "moved", playlist_dir=tmp_path / "playlists")
    assert [t.item_id for t in moved.album_tracks("Artist 0/Album 0")] == before


def test_missing_folder_and_album_give_one_line_errors(tmp_path: Path, folder: LocalFolder) -> None:
    with pytest.raises(MediaServerError, match="does not exist"):
        LocalFolder(tmp_path / "nope", playlist_dir=tmp_path).list_albums()
    with pytest.raises(MediaServerError, match="not found"):
        folder.album_tracks("../../etc")


def test_playlists_as_m3u8(folder: LocalFolder) -> None:
    tracks = folder.album_tracks("Artist 1/Album 1")
    playlist_id = folder.create_playlist("Evening_automatic", [t.item_id for t in tracks])
    text = (folder.playlist_dir / playlist_id).read_text()
    assert text.startswith("#EXTM3U\n") and "#EXTINF:2,Artist 1 - Song 1-0" in text
    assert text.splitlines()[3] == tracks[0].path
    folder.create_playlist("Kept by hand", [tracks[0].item_id])
    assert {(p.name, p.track_count) for p in folder.list_playlists()} == {("Evening_automatic", 3),
                                                                           ("Kept by hand", 1)}
    assert delete_automatic_playlists(folder) == ["Evening_automatic"]
    assert [p.name for p in folder.list_playlists()] == ["Kept by hand"]
    with pytest.raises(MediaServerError, match="no file with item id"):
        folder.create_playlist("x", ["unknown"])


def test_replacing_a_playlists_songs_rewrites_its_file_in_place(folder: LocalFolder) -> None:
    assert Capability.KEEPS_PLAYLIST_ID in folder.capabilities
    tracks = folder.album_tracks("Artist 1/Album 1") + folder.album_tracks("Artist 0/Album 0")
    playlist_id = folder.create_playlist("Evening: late_automatic", [t.item_id for t in tracks[:3]])
    assert playlist_id == "Evening_ late_automatic.m3u8"
    wanted = [tracks[4].item_id, tracks[0].item_id]
    assert folder.replace_playlist_tracks(playlist_id, wanted) == playlist_id
    text = (folder.playlist_dir / playlist_id).read_text()
    assert text.splitlines()[:2] == ["#EXTM3U", "#PLAYLIST:Evening: late_automatic"]  # the name as given
    assert folder.playlist_tracks(playlist_id) == wanted
    assert folder.replace_playlist_tracks(playlist_id, wanted) == playlist_id
    assert (folder.playlist_dir / playlist_id).read_text() == text  # idempotent
    assert sorted(p.name for p in folder.playlist_dir.iterdir()) == [playlist_id]  # no temporary file left
    with pytest.raises(MediaServerError, match="no file with item id"):
        folder.replace_playlist_tracks(playlist_id, [tracks[0].item_id, "unknown"])
    assert (folder.playlist_dir / playlist_id).read_text() == text
    with pytest.raises(MediaServerError, match="not found"):
        folder.replace_playlist_tracks("Nope.m3u8", wanted)
    with pytest.raises(MediaServerError, match="does not change it"):
        folder.replace_playlist_tracks("music/Artist 0/mine.m3u8", wanted)


def test_odd_names_and_dangling_links_do_not_break_listing(tmp_path: Path) -> None:
    root = tmp_path / "music"
    make_library(root, albums=1, tracks_per_album=2, seconds=1)
    latin1 = os.fsdecode(b"Caf\xe9 Album")  # not UTF-8 on disk, as in old collections
    odd = root / "Artist 0" / latin1
    odd.mkdir()
    source = next((root / "Artist 0" / "Album 0").glob("*.flac"))
    (odd / os.fsdecode(b"01 Ol\xe9.flac")).write_bytes(source.read_bytes())
    (root / "Artist 0" / "Album 0" / "gone.mp3").symlink_to(tmp_path / "missing.mp3")
    folder = LocalFolder(root, playlist_dir=tmp_path / "playlists")
    albums = {a.album_id: a for a in folder.list_albums()}
    assert len(albums) == 2
    odd_id = next(a for a in albums if a.startswith("b64:"))
    odd_id.encode("utf-8")  # storable in JSON and SQL text
    tracks = folder.album_tracks(odd_id)
    assert len(tracks) == 1 and "\\xe9" in tracks[0].path
    tracks[0].path.encode("utf-8")
    with folder.open_audio(tracks[0]) as audio:
        assert audio.path.read_bytes() == source.read_bytes()
    assert len(folder.album_tracks("Artist 0/Album 0")) == 2  # the dangling link is not a track


def test_playlists_of_the_playlist_folder_and_the_music_folder_are_read(folder: LocalFolder, tmp_path: Path) -> None:
    tracks = [t for a in folder.list_albums() for t in folder.album_tracks(a.album_id)]
    music = tmp_path / "music"
    first, second = music / (tracks[0].path or ""), music / (tracks[1].path or "")
    (tmp_path / "playlists").mkdir(exist_ok=True)
    # absolute paths, a URL and a file outside the library (both left out), a comment
    (tmp_path / "playlists" / "Mine.m3u").write_bytes(
        f"#EXTM3U\n{second}\nhttp://radio.example/stream\n/etc/hosts\n{first}\n".encode("latin-1"))
    # inside the music folder: paths relative to the playlist file
    (music / "Road.m3u8").write_text(f"# road\n{first.relative_to(music)}\n", encoding="utf-8")
    listed = {p.playlist_id: p for p in folder.list_playlists()}
    assert set(listed) == {"Mine.m3u", "music/Road.m3u8"} and listed["Mine.m3u"].track_count == 4
    assert folder.playlist_tracks("Mine.m3u") == [tracks[1].item_id, tracks[0].item_id]
    assert folder.playlist_tracks("music/Road.m3u8") == [tracks[0].item_id]
    with pytest.raises(MediaServerError, match="does not delete it"):
        folder.delete_playlist("music/Road.m3u8")
    with pytest.raises(MediaServerError, match="not found"):
        folder.playlist_tracks("music/../../etc/passwd.m3u")


def test_all_tracks_are_the_tracks_of_every_listed_album(folder: LocalFolder, tmp_path: Path) -> None:
    loose = tmp_path / "music" / "loose.flac"  # a file directly in the music folder is an album of its own
    loose.write_bytes((tmp_path / "music" / "Artist 0" / "Album 0" / "01 Song 0-0.flac").read_bytes())
    assert Capability.LISTS_ALL_TRACKS in folder.capabilities
    by_album = {t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)}
    pages = list(folder.all_tracks(page_size=2))
    listed = [t for page in pages for t in page]
    assert len(listed) == len(by_album) == 7 and set(listed) == by_album
    assert [len(page) for page in pages] == [4, 3]  # whole folders, cut after page_size: 1 loose + 3, then 3
