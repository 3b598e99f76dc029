"""Sonic fingerprint through a media server with a play history (the Jellyfin fake), per-user credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app import serve
from tests.fakes.jellyfin import FakeJellyfin
from tests.library import make_library
from tests.seeded_library import seed_arc


@pytest.fixture
def jellyfin_site(make_config, db, redis, tmp_path: Path):
    make_library(tmp_path / "media" / "Music", albums=4, tracks_per_album=3, seconds=1)
    with FakeJellyfin(tmp_path / "media", libraries={"Music": "music"}) as fake:
        cfg = make_config(MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL=fake.url, JELLYFIN_USER_ID="Bob",
                          JELLYFIN_TOKEN="bob-token", HTTP_RETRIES=0, SONIC_FINGERPRINT_TOP_N_SONGS=5)
        seed_arc(db, redis, cfg, [(t["Id"], t["Name"], "") for t in fake.tracks])
        app = serve(cfg)
        yield app.test_client(), fake
        app.extensions["audiomuse"].stop_background.set()


def test_fingerprint_mixes_the_users_top_songs_and_discoveries(jellyfin_site):
    client, fake = jellyfin_site
    now = datetime.now(UTC)
    alice = fake.users["Alice"]
    played = fake.tracks[:2]
    fake.set_played("Alice", played[0]["Id"], 9, now - timedelta(days=1))
    fake.set_played("Alice", played[1]["Id"], 4, None)
    body = client.post("/api/sonic_fingerprint/generate",
                       json={"n": 6, "user": "Alice", "secret": "alice-token"}).get_json()
    roles = {t["item_id"]: t["role"] for t in body}
    assert len(body) == 6 and len(roles) == 6
    assert {i for i, role in roles.items() if role == "seed"} <= {p["Id"] for p in played}
    assert any(role == "discovery" for role in roles.values())
    # Bob (the configured account) has played nothing: his fingerprint cannot be made.
    nothing = client.post("/api/sonic_fingerprint/generate", json={"n": 6})
    assert nothing.status_code == 200 and nothing.get_json() == []

    made = client.post("/api/create_playlist", json={"playlist_name": "Mine", "track_ids": list(roles),
                                                      "user": "Alice", "secret": "alice-token"})
    assert made.status_code == 201
    created = [p for p in fake.playlists.values() if p.name == "Mine_instant"]
    assert len(created) == 1 and created[0].owner_id == alice and created[0].item_ids == list(roles)


def test_blocked_songs_neither_shape_the_fingerprint_nor_appear_in_it(jellyfin_site):
    client, fake = jellyfin_site
    ids = [t["Id"] for t in fake.tracks]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    fake.set_played("Bob", ids[0], 9, yesterday)
    fake.set_played("Bob", ids[1], 5, yesterday)
    answer = client.post("/api/sonic_fingerprint/generate", json={"n": 4, "exclude_artists": ["Artist 1", "ARTIST 2"]})
    # one seed (the played t0; t1 is blocked), then the nearest songs to t0 alone that are not blocked
    assert [t["item_id"] for t in answer.get_json()] == [ids[0], ids[3], ids[4], ids[5]]
    assert answer.headers["X-AudioMuse-Excluded"] == "2"


def test_media_server_down_is_a_502_with_the_cause(jellyfin_site):
    client, fake = jellyfin_site
    fake.stop()
    answer = client.post("/api/sonic_fingerprint/generate", json={"n": 3})
    assert answer.status_code == 502 and "cannot reach" in answer.get_json()["error"]
