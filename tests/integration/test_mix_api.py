"""POST /api/mix and the queue-mode switch against a real PostgreSQL, Redis and Voyager index on a library whose
vectors are known (seed_arc: t0 … t11 on a quarter circle, in that order, one artist each, BPM 100 + 2i)."""

from __future__ import annotations

import pytest

from app import serve
from db.app_settings import get_setting
from tests.seeded_library import seed_arc

TOKEN = "mix-token-1234567890"


def arc_ids() -> list[str]:
    return [f"t{i}" for i in range(12)]


@pytest.fixture
def seeded(make_config, db, redis):
    def make(**settings):
        cfg = make_config(**settings)
        seed_arc(db, redis, cfg, [(item_id, f"Song {item_id}", "") for item_id in arc_ids()])
        app = serve(cfg)
        apps.append(app)
        return app.test_client()

    apps: list = []
    yield make
    for app in apps:
        app.extensions["audiomuse"].stop_background.set()


def test_the_next_songs_with_reasons_in_the_documented_shape(seeded):
    client = seeded()
    answer = client.post("/api/mix", json={"tracks": ["t0"], "previous": ["t1"], "count": 3,
                                           "exclude_artists": ["ARTIST 3"], "bliss_extra": {"ignored": True}})
    assert answer.status_code == 200
    body = answer.get_json()
    assert [t["item_id"] for t in body["tracks"]] == ["t2", "t4", "t5"] and body["count"] == 3
    first = body["tracks"][0]
    assert {k: type(v) for k, v in first.items() if k in ("item_id", "title", "author", "album", "reason",
                                                           "seed_item_id")} == dict.fromkeys(
        ("item_id", "title", "author", "album", "reason", "seed_item_id"), str)
    assert isinstance(first["duration_seconds"], float) and isinstance(first["tempo_bpm"], float)
    assert isinstance(first["distance"], float) and 0 < first["distance"] < 1
    assert (first["title"], first["author"], first["seed_item_id"]) == ("Song t2", "Artist 2", "t0")
    assert first["reason"] == f"near Song t0 (distance {first['distance']:.3f})"
    # a tempo step limit says so; a shuffle tells its seed so it can be repeated
    stepped = client.post("/api/mix", json={"tracks": ["t0"], "count": 2, "max_bpm_diff": 2}).get_json()
    assert [t["item_id"] for t in stepped["tracks"]] == ["t1", "t2"]
    assert stepped["tracks"][1]["reason"].endswith("tempo 104 BPM within 2 of 102 (Song t1)")
    shuffled = client.post("/api/mix", json={"tracks": ["t0"], "count": 4, "shuffle": True, "seed": 9}).get_json()
    again = client.post("/api/mix", json={"tracks": ["t0"], "count": 4, "shuffle": "true", "seed": 9}).get_json()
    assert shuffled["seed"] == 9 and shuffled["tracks"] == again["tracks"]


@pytest.mark.parametrize(("body", "parameter"), [
    ({}, "tracks"), ({"tracks": []}, "tracks"), ({"tracks": [1]}, "tracks"), ({"tracks": "t0", "count": 0}, "count"),
    ({"tracks": ["t0"], "count": "ten"}, "count"), ({"tracks": ["t0"], "count": 100_000}, "count"),
    ({"tracks": ["t0"], "previous": "t1\x00"}, "previous"), ({"tracks": ["t0"], "no_repeat_artist": -1},
                                                              "no_repeat_artist"),
    ({"tracks": ["t0"], "no_repeat_album": 1.5}, "no_repeat_album"), ({"tracks": ["t0"], "max_bpm_diff": 0},
                                                                       "max_bpm_diff"),
    ({"tracks": ["t0"], "min_duration": 300, "max_duration": 200}, "min_duration"),
    ({"tracks": ["t0"], "max_duration": -5}, "max_duration"), ({"tracks": ["t0"], "exclude_artists": 5},
                                                               "exclude_artists"),
    ({"tracks": ["t0"], "shuffle": "maybe"}, "shuffle"),
])
def test_bad_values_are_400s_naming_the_parameter(seeded, body, parameter):
    answer = seeded().post("/api/mix", json=body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["parameter"] == parameter


def test_a_body_that_is_not_an_object_is_a_400(seeded):
    answer = seeded().post("/api/mix", data="[1]", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "body"


def test_an_unknown_seed_is_a_404_naming_it(seeded):
    answer = seeded().post("/api/mix", json={"tracks": ["t0", "nowhere"]})
    assert answer.status_code == 404
    assert answer.get_json()["parameter"] == "tracks" and "'nowhere'" in answer.get_json()["error"]


def test_no_index_yet_is_a_503(client):
    answer = client.post("/api/mix", json={"tracks": ["t0"]})
    assert answer.status_code == 503 and "run an analysis first" in answer.get_json()["error"]


def test_a_bearer_token_works_and_nothing_else_does(seeded):
    client = seeded(ADMIN_PASSWORD="a long password", API_TOKEN=TOKEN)
    ok = client.post("/api/mix", json={"tracks": ["t0"], "count": 2}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and [t["item_id"] for t in ok.get_json()["tracks"]] == ["t1", "t2"]
    assert client.post("/api/mix", json={"tracks": ["t0"]}).status_code == 401
    wrong = client.post("/api/mix", json={"tracks": ["t0"]}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_the_queue_mode_switch_is_stored_for_the_workers(seeded, db):
    client = seeded(MEDIASERVER_TYPE="mpd")
    state = client.get("/api/mix/mpd_queue").get_json()
    assert (state["enabled"], state["running"], state["state"], state["mediaserver_type"]) == (False, False, "off",
                                                                                               "mpd")
    assert (state["min_ahead"], state["add"], state["last_added"], state["last_error"]) == (5, 10, None, None)
    on = client.post("/api/mix/mpd_queue", json={"enabled": True})
    assert on.status_code == 200 and on.get_json()["enabled"] is True and get_setting(db, "mpd_queue_mode") == "true"
    assert client.post("/api/mix/mpd_queue", json={"enabled": "off"}).get_json()["enabled"] is False
    missing = client.post("/api/mix/mpd_queue", json={})
    assert missing.status_code == 400 and missing.get_json()["parameter"] == "enabled"
    assert client.post("/api/mix/mpd_queue", json={"enabled": "perhaps"}).get_json()["parameter"] == "enabled"
