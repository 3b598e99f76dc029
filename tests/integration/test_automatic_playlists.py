"""Clustering's automatic playlists kept in place (services.automatic_playlists) on the local folder and on the
Jellyfin-shaped server, a server refusing one playlist, and the pin API. MPD and supysonic run the same scenario in
test_mpd.py and test_navidrome.py; the clustering task itself in test_clustering.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Config
from db.playlists import save_playlist
from mediaserver import get_media_server
from mediaservers.local import LocalFolder, item_id_for
from services import automatic_playlists as automatic
from tests.automatic_publishing import check_in_place_publishing, recorded, run, store_tracks
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.library import make_library


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("automatic-music")
    make_library(root / "Music", albums=3, tracks_per_album=3, seconds=1)
    return root


def test_local_folder_playlists_are_rewritten_in_place(db, music: Path, tmp_path: Path) -> None:
    folder = LocalFolder(music, playlist_dir=tmp_path / "playlists")
    songs = [t.item_id for a in folder.list_albums() for t in folder.album_tracks(a.album_id)]

    def holds(playlist_id: str) -> list[str] | None:
        """The songs of the .m3u8 file itself (absolute paths → item ids), None when there is no such file."""
        path = tmp_path / "playlists" / playlist_id
        if not path.is_file():
            return None
        lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
        return [item_id_for(str(Path(line).relative_to(folder.root))) for line in lines]

    check_in_place_publishing(db, folder, songs, holds)


def jellyfin(fake: FakeJellyfin, tmp_path: Path):  # type: ignore[no-untyped-def]
    return get_media_server(Config.from_mapping({
        "MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_URL": fake.url, "JELLYFIN_USER_ID": fake.users["Alice"],
        "JELLYFIN_TOKEN": API_KEY, "TEMP_DIR": str(tmp_path / "temp"), "HTTP_TIMEOUT_SECONDS": 5,
        "HTTP_RETRIES": 0}))


def test_jellyfin_playlists_keep_their_ids(db, music: Path, tmp_path: Path) -> None:
    with FakeJellyfin(music) as fake:
        server = jellyfin(fake, tmp_path)
        songs = [t["Id"] for t in fake.tracks]

        def holds(playlist_id: str) -> list[str] | None:
            playlist = fake.playlists.get(playlist_id)
            return None if playlist is None else list(playlist.item_ids)

        check_in_place_publishing(db, server, songs, holds)
        assert fake.calls_to("/Items", "DELETE")  # entries removed (and Party deleted) the documented way


def test_a_playlist_the_server_refuses_is_recorded_and_the_rest_goes_on(db, music: Path, tmp_path: Path) -> None:
    with FakeJellyfin(music) as fake:
        server = jellyfin(fake, tmp_path)
        songs = [t["Id"] for t in fake.tracks]
        store_tracks(db, songs)
        run(db, server, [("Calm", songs[0:2]), ("Party", songs[2:4]), ("Old", songs[4:6])])
        before = recorded(db)
        calm, old = before["Calm_automatic"][0], before["Old_automatic"][0]
        fake.fault(path_contains=f"/Playlists/{calm}/Items", status=500)  # Calm cannot be read nor changed
        fake.fault(path_contains=f"/Items/{old}", status=500)  # nor can Old be deleted
        playlists = [("Calm_automatic", songs[6:8]), ("Party_automatic", songs[6:8])]
        automatic.save(db, playlists)
        lines: list[str] = []
        outcome = automatic.publish(db, server, playlists, log=lines.append)
    assert [(f["name"], f["action"]) for f in outcome.failures] == [("Calm_automatic", "update"),
                                                                     ("Old_automatic", "delete")]
    assert all("HTTP 500" in f["reason"] for f in outcome.failures)
    assert len(lines) == 2 and lines[0].startswith("Calm_automatic: the media server refused to update it: ")
    assert (outcome.updated, outcome.deleted, outcome.published) == (["Party_automatic"], [], 1)
    assert fake.playlists[before["Party_automatic"][0]].item_ids == songs[6:8]
    assert fake.playlists[calm].item_ids == songs[0:2]  # as it was, and still recorded as that playlist
    assert recorded(db)["Calm_automatic"] == (calm, songs[6:8])


# --- the pin API -------------------------------------------------------------------------------------------------
def test_pin_unpin_and_list(client, db, music: Path, tmp_path: Path) -> None:
    folder = LocalFolder(music, playlist_dir=tmp_path / "playlists")
    songs = [t.item_id for a in folder.list_albums() for t in folder.album_tracks(a.album_id)]
    store_tracks(db, songs)
    run(db, folder, [("Calm", songs[0:3]), ("Rock/Fast", songs[3:5])])
    listed = client.get("/api/clustering/playlists").get_json()["playlists"]
    assert [(p["name"], p["pinned"], p["track_count"], p["mediaserver_playlist"]) for p in listed] == [
        ("Calm_automatic", False, 3, "Calm_automatic.m3u8"),
        ("Rock/Fast_automatic", False, 2, "Rock_Fast_automatic.m3u8")]

    pinned = client.post("/api/clustering/playlists/Rock/Fast_automatic/pin")
    assert pinned.status_code == 200
    body = pinned.get_json()["playlist"]
    assert (body["name"], body["pinned"], body["track_count"]) == ("Rock/Fast_automatic", True, 2)
    again = client.post("/api/clustering/playlists/Rock/Fast_automatic/pin").get_json()["playlist"]
    assert again["pinned_at"] == body["pinned_at"]  # pinning twice changes nothing
    assert [p["pinned"] for p in client.get("/api/clustering/playlists").get_json()["playlists"]] == [False, True]
    generated = client.get("/api/playlists?source=clustering").get_json()["playlists"]
    assert {p["name"]: p["pinned"] for p in generated} == {"Calm_automatic": False, "Rock/Fast_automatic": True}

    unpinned = client.delete("/api/clustering/playlists/Rock/Fast_automatic/pin")
    assert unpinned.status_code == 200 and unpinned.get_json()["playlist"]["pinned"] is False
    assert unpinned.get_json()["playlist"]["pinned_at"] is None

    for method in (client.post, client.delete):
        missing = method("/api/clustering/playlists/Nope_automatic/pin")
        assert missing.status_code == 404
        assert missing.get_json() == {"error": "no automatic playlist named 'Nope_automatic'", "status": 404,
                                      "parameter": "name"}
    # only clustering's playlists are pinned here: a playlist of another source is unknown to this API
    save_playlist(db, name="Mine_instant", source="similar", item_ids=songs[:1], mediaserver_playlist=None)
    assert client.post("/api/clustering/playlists/Mine_instant/pin").status_code == 404
