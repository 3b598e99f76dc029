"""Where a server's file is read from: in place through PATH_MAPPING, or downloaded and cleaned up."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaservers.access import local_or_downloaded, map_path


def test_path_mapping() -> None:
    mapping = [("/media/music/", "/mnt/music"), ("/media", "/srv")]
    assert map_path("/media/music/a.mp3", mapping) == Path("/mnt/music/a.mp3")
    assert map_path("/media/other/b.mp3", mapping) == Path("/srv/other/b.mp3")
    assert map_path("/media-extra/c.mp3", mapping) is None  # a prefix, not a substring; unmapped: downloaded
    assert map_path("Artist/Album/d.flac", [("", "/lib")]) == Path("/lib/Artist/Album/d.flac")
    assert map_path("Artist/Album/d.flac", []) is None  # never looked up in the current directory
    assert map_path(None, mapping) is None
    # what a server reports is confined to the mapped folders
    assert map_path("/etc/shadow", mapping) is None
    assert map_path("/media/music/../../../etc/shadow", mapping) is None
    assert map_path("/media/x/../music/a.mp3", mapping) == Path("/srv/music/a.mp3")  # stays inside /srv
    assert map_path("../../etc/passwd", [("", "/lib")]) is None
    assert map_path("/music/a.flac", [("/music", "/music")]) == Path("/music/a.flac")  # read in place unchanged


def test_a_fifo_or_directory_is_never_opened(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "lib" / "song.flac"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    (tmp_path / "lib" / "folder.flac").mkdir()

    def download(target: Path) -> Path:
        target.write_bytes(b"downloaded")
        return target

    for name in ("song.flac", "folder.flac"):
        with local_or_downloaded(f"/server/{name}", mapping=[("/server", str(fifo.parent))],
                                 temp_dir=tmp_path / "t", download=download) as audio:
            assert audio.access == "downloaded"  # opening the FIFO would have blocked for ever


def test_direct_when_readable_else_downloaded_and_removed(tmp_path: Path) -> None:
    local = tmp_path / "lib" / "song.flac"
    local.parent.mkdir()
    local.write_bytes(b"audio")

    def download(target: Path) -> Path:
        target.write_bytes(b"downloaded")
        return target

    with local_or_downloaded("/server/song.flac", mapping=[("/server", str(local.parent))], temp_dir=tmp_path / "t",
                             download=download) as audio:
        assert (audio.access, audio.path) == ("direct", local)
    with local_or_downloaded("/elsewhere/song.flac", mapping=[], temp_dir=tmp_path / "t",
                             download=download) as audio:
        assert audio.access == "downloaded" and audio.path.read_bytes() == b"downloaded"
        kept = audio.path
    assert not kept.exists()


def test_an_error_inside_the_block_is_not_swallowed(tmp_path: Path) -> None:
    local = tmp_path / "song.flac"
    local.write_bytes(b"audio")
    with pytest.raises(OSError, match="boom"), local_or_downloaded(
            str(local), mapping=[(str(tmp_path), str(tmp_path))], temp_dir=tmp_path / "t", download=lambda t: t):
        raise OSError("boom")


def test_redaction_covers_query_strings_headers_and_user_info() -> None:
    from infra.logs import redact

    assert redact("GET /rest/ping?u=alice&t=abc123&s=salt9&p=enc:736563726574&v=1.16") == \
        "GET /rest/ping?u=alice&t=***&s=***&p=***&v=1.16"
    assert redact("{'X-Emby-Token': 'tok-1', 'Authorization': 'Bearer xyz'}") == \
        "{'X-Emby-Token': '***', 'Authorization': '***'}"
    assert redact("x-goog-api-key: AIza123") == "x-goog-api-key: ***"
    assert redact("redis://:pa55@127.0.0.1:6379/0 ?api_key=k") == "redis://:***@127.0.0.1:6379/0 ?api_key=***"
    assert redact("nothing secret here: /Items/123/Download?UserId=42") == \
        "nothing secret here: /Items/123/Download?UserId=42"
