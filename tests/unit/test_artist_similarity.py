"""Artist similarity on hand-made embeddings: the fit, the divergence, the search order, the explanation, the radio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from discovery.artist_similarity import (
    ArtistModel,
    UnknownArtist,
    artist_radio,
    artist_vector,
    divergence,
    explain,
    fallback_artist_id,
    fit_artists,
    similar_artists,
)
from discovery.types import DiscoveryError, TrackInfo
from discovery.vectors import cosine_distance


def fit(songs: list[tuple[str, str, list[float]]], ids: dict[str, str] | None = None) -> ArtistModel:
    """songs: (item id, artist, vector); titles are the item ids."""
    ids = ids or {}
    return fit_artists([s[0] for s in songs], [s[0] for s in songs], [s[1] for s in songs],
                       [ids.get(s[1]) for s in songs], np.array([s[2] for s in songs], dtype=np.float32))


def test_one_song_artists_get_one_component_and_the_divergence_has_its_closed_form():
    model = fit([("a1", "A", [1, 0]), ("b1", "B", [0, 1])])
    a, b = model.find("A"), model.find("B")
    assert a is not None and b is not None
    assert list(model.component_offsets) == [0, 1, 2] and model.weights.tolist() == [1.0, 1.0]
    # No artist has two songs: the prior is the variance of all songs, 0.25 in each dimension, and a one-song
    # artist's variance is exactly the prior.
    assert model.variances.tolist() == [[0.25, 0.25], [0.25, 0.25]]
    assert model.means[a].tolist() == [1.0, 0.0]
    # Equal variances: DB = 1/8 Σ Δ²/σ² = 1/8 (1/0.25 + 1/0.25) = 1, divided by d = 2.
    assert divergence(model, a, b) == pytest.approx(0.5, abs=1e-9)
    assert divergence(model, b, a) == pytest.approx(0.5, abs=1e-9)


def test_artists_with_the_same_songs_are_at_divergence_zero_and_others_are_not():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 8))
    songs = [(f"x{i}", "Twin One", v.tolist()) for i, v in enumerate(vectors)]
    songs += [(f"y{i}", "Twin Two", v.tolist()) for i, v in enumerate(vectors)]
    songs += [(f"z{i}", "Other", (v + 3).tolist()) for i, v in enumerate(vectors[:5])]
    model = fit(songs)
    one, two, other = (model.resolve(n) for n in ("Twin One", "Twin Two", "Other"))
    assert len(model.components(one)) == 2  # 20 songs: a mixture of 20 // 8 components
    assert len(model.components(other)) == 1  # under 16 songs: one Gaussian
    assert divergence(model, one, two) == pytest.approx(0.0, abs=1e-9)
    assert divergence(model, one, other) > 0.01
    assert [m.artist for m in similar_artists(model, one, n=5)] == [two, other]


def test_similar_artists_follow_the_arc_nearest_first_and_never_name_the_query():
    songs = []
    for a in range(12):
        angle = a * math.pi / 2 / 11
        for s in range(3):
            songs.append((f"{a}-{s}", f"Artist {a:02d}", [math.cos(angle), math.sin(angle), 0.01 * s]))
    model = fit(songs)
    query = model.resolve("Artist 05")
    found = similar_artists(model, query, n=4)
    assert query not in [m.artist for m in found]
    assert {model.names[m.artist] for m in found[:2]} == {"Artist 04", "Artist 06"}
    assert {model.names[m.artist] for m in found[2:]} == {"Artist 03", "Artist 07"}
    assert [m.divergence for m in found] == sorted(m.divergence for m in found)
    with pytest.raises(DiscoveryError):
        similar_artists(model, query, n=0)


def test_the_explanation_pairs_the_matching_components_and_names_their_nearest_songs():
    e1, e2, e3 = np.eye(3)
    rng = np.random.default_rng(1)
    songs = [(f"q1-{i}", "Query", (e1 + 0.02 * (i + 1) * e3).tolist()) for i in range(8)]
    songs += [(f"q2-{i}", "Query", (e2 + 0.02 * (i + 1) * e3).tolist()) for i in range(8)]
    songs += [(f"c-{i}", "Candidate", (e2 + 0.03 * (i + 1) * e3 + 0.001 * rng.normal(size=3)).tolist())
              for i in range(4)]
    model = fit(songs)
    query, candidate = model.resolve("Query"), model.resolve("Candidate")
    assert len(model.components(query)) == 2 and len(model.components(candidate)) == 1
    best = explain(model, query, candidate)
    assert len(best) == 2 and best[0].distance < best[1].distance  # two pairs: 2 × 1 components
    ids = [song[0] for song in best[0].artist1_songs]
    assert len(ids) == 3 and all(i.startswith("q2-") for i in ids)  # the e2 component of the query
    # the songs nearest that component's mean (the mean of q2-0..7 lies between q2-3 and q2-4)
    assert ids == ["q2-3", "q2-4", "q2-2"]
    distances = [song[2] for song in best[0].artist1_songs]
    assert distances == sorted(distances)
    assert [song[0] for song in best[0].artist2_songs] == ["c-1", "c-2", "c-3"]
    assert [song[0] for song in best[1].artist1_songs] == ["q1-3", "q1-4", "q1-2"]  # the other pair: e1's songs
    assert best[0].component2_weight == pytest.approx(1.0)
    assert best[0].component1_weight == pytest.approx(0.5, abs=1e-6)


def test_artists_are_found_by_id_name_and_typed_name_and_ids_fall_back_to_the_folded_name():
    model = fit([("1", "Björk", [1, 0]), ("2", "Björk feat. Someone", [1, 0.1]), ("3", "Sigur Rós", [0, 1])],
                ids={"Björk": "0A1B2C3D4E5F60718293A4B5C6D7E8F9"})
    bjork = model.resolve("bjork")
    assert model.track_counts[bjork] == 2  # "feat. X" folds into the artist
    assert model.artist_ids[bjork] == "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
    assert model.find("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9") == bjork  # a GUID with dashes, lower case
    sigur = model.resolve("SIGUR ROS")
    assert model.artist_ids[sigur] == fallback_artist_id("Sigur Rós") == fallback_artist_id("sigur ros")
    assert len(model.artist_ids[sigur]) == 32 and int(model.artist_ids[sigur], 16) >= 0
    assert model.find(model.artist_ids[sigur]) == sigur
    assert model.find("nobody") is None
    with pytest.raises(UnknownArtist, match="nobody"):
        artist_vector(model, "nobody")
    assert [model.names[r] for r in model.search("RO", limit=5)] == ["Sigur Rós"]


def test_the_artist_vector_is_the_weighted_mean_of_unit_songs():
    model = fit([("1", "A", [2, 0]), ("2", "A", [0, 3])])
    assert artist_vector(model, "A").tolist() == [0.5, 0.5]


def test_the_model_survives_storage():
    songs = [(f"{a}-{s}", f"Artist {a}", [a, 1, s * 0.1]) for a in range(5) for s in range(3)]
    model = fit(songs)
    copy = ArtistModel.from_bytes(model.to_bytes(), model.index_bytes())
    assert copy.names == model.names and copy.artist_ids == model.artist_ids
    assert np.array_equal(copy.means, model.means) and np.array_equal(copy.representatives, model.representatives)
    assert similar_artists(copy, 2, n=3) == similar_artists(model, 2, n=3)


def test_radio_takes_turns_caps_each_artist_and_drops_versions_and_near_duplicates():
    songs = [("s1", "Seed", [1, 0, 0]), ("s2", "Seed", [0.99, 0.1, 0]), ("s3", "Seed", [0.98, 0.15, 0]),
             ("s4", "Seed", [0.97, 0.2, 0]),
             ("n1", "Near", [0.9, 0.3, 0]), ("n2", "Near", [0.9, 0.3, 0.0001]), ("n3", "Near", [0.85, 0.35, 0]),
             ("f1", "Far", [0, 0, 1])]
    titles = {"s1": "Song One (Live)", "s2": "Song One"}
    model = fit(songs)
    tracks = {i: TrackInfo(item_id=i, title=titles.get(i, f"Song {i}"),
                           artist=a, vector=np.array(v, dtype=np.float32)) for i, a, v in songs}
    picked = artist_radio(model, model.resolve("Seed"), n=10, lookup=lambda ids: {i: tracks[i] for i in ids},
                          max_per_artist=2, duplicate_distance=0.001)
    names = [(p.track.item_id, model.names[p.artist]) for p in picked]
    # Seed first, then Near, Far, in turns, each artist's songs nearest the seed's centroid first; s1 is a version
    # of s2 ("Song One"), n2 a near-duplicate of n1; two songs each at most.
    assert names == [("s2", "Seed"), ("n1", "Near"), ("f1", "Far"), ("s3", "Seed"), ("n3", "Near")]
    assert picked[0].distance == pytest.approx(cosine_distance(artist_vector(model, "Seed"), tracks["s2"].vector))
    with pytest.raises(DiscoveryError):
        artist_radio(model, 0, n=5, lookup=lambda ids: {}, max_per_artist=0, duplicate_distance=0.01)
