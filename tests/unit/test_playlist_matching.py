"""Playlist matching on hand-made data: profiles and their hash, each ranker, the two fusions, PPMI with its
support threshold, and the evaluation harness's metrics on a small fixed library (exact values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from discovery.playlist_matching import MatchingLibrary, build_profile, cooccurrence, membership_hash, profile_of
from discovery.ranking import Library, fuse_rrf, fuse_weighted, rank_all
from discovery.ranking_eval import Split, evaluate, metrics_of, split_playlists


def library() -> Library:
    """Six songs: 0-2 point along x (rows 0 and 1 nearly the same), 3-5 along y; tags and tempo follow."""
    vectors = np.array([[1, 0, 0], [0.99, 0.1, 0], [0.8, 0.6, 0], [0, 1, 0], [0.1, 0.99, 0], [0.1, 0.9, 0.42]])
    tags = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    moods = np.zeros((6, 1))
    return Library.build(vectors, tags, moods, bpm=[120, 122, None, 80, 82, 84], energy=[0.8, 0.8, 0.7, 0.4, 0.5, None])


def test_profile_and_its_hash():
    lib = library()
    profile = build_profile(lib, [1, 0])
    assert profile.members.tolist() == [0, 1]
    assert np.linalg.norm(profile.centroid) == pytest.approx(1.0)
    assert profile.bpm_centre == 121.0 and profile.bpm_spread == 6.0  # the spread's floor
    assert membership_hash(["b", "a", "a"]) == membership_hash(["a", "b"]) != membership_hash(["a"])
    with pytest.raises(ValueError):
        build_profile(lib, [])


def test_each_ranker_prefers_what_it_should():
    lib = library()
    scores = rank_all(lib, build_profile(lib, [0, 1]))
    assert int(np.argmax(np.where([0, 0, 1, 1, 1, 1], scores["centroid"], -9))) == 2
    assert scores["nearest_member"][2] > scores["nearest_member"][5]
    assert scores["tags"][2] > scores["tags"][3]
    # tempo 80 is far from 121; a song without tempo is neutral (0.5), without energy too
    assert scores["tempo_energy"][3] < 0.01 and scores["tempo_energy"][2] == pytest.approx(0.5 * math.exp(-0.5 * (
        (0.7 - 0.8) / 0.04) ** 2), rel=1e-5)
    two_styles = rank_all(lib, build_profile(lib, [0, 3]))
    # the nearest member keeps both styles: 1 and 4 score alike, the centroid prefers the middle song 2
    assert two_styles["nearest_member"][1] == pytest.approx(two_styles["nearest_member"][4], abs=0.02)
    assert two_styles["centroid"][2] > two_styles["centroid"][1]


def test_fusions():
    scores = {"a": np.array([3.0, 2.0, 1.0, 0.0]), "b": np.array([0.0, 1.0, 3.0, 2.0])}
    candidates = np.array([True, True, True, False])
    weighted = fuse_weighted(scores, {"a": 1.0, "b": 1.0}, candidates)
    # z(a) over the candidates = [1.2247, 0, -1.2247], z(b) = [-1.0690, -0.2673, 1.3363]
    assert weighted[3] == -np.inf and int(np.argmax(weighted)) == 0
    assert weighted[0] == pytest.approx(1.2247449 - 1.0690450, abs=1e-6)
    assert weighted[1] == pytest.approx(0.0 + (1.0 - 4 / 3) / np.std([0.0, 1.0, 3.0]), abs=1e-9)
    rrf = fuse_rrf(scores, {"a": 1.0, "b": 0.5}, candidates)
    assert rrf[0] == pytest.approx(1 / 61 + 0.5 / 63) and rrf[2] == pytest.approx(1 / 63 + 0.5 / 61)
    assert rrf[3] == -np.inf


def test_ppmi_counts_only_pairs_with_enough_support():
    playlists = [[0, 1, 2], [0, 1], [2, 3], [0, 1, 3]]
    ppmi = cooccurrence(playlists, 5, min_support=2)
    assert ppmi[0, 1] == pytest.approx(math.log((3 / 4) / ((3 / 4) * (3 / 4))))  # together in 3 of 4
    assert ppmi[2, 3] == 0.0  # once together: below the support
    assert ppmi[0, 0] == 0.0 and ppmi[4].sum() == 0.0
    assert cooccurrence(playlists, 5, min_support=1)[2, 3] == pytest.approx(math.log((1 / 4) / ((2 / 4) * (2 / 4))))


def test_metrics_exact():
    m = metrics_of([5, 2, 7, 1, 9], [2, 1])
    assert m.recall == 1.0 and m.mrr == 0.5 and m.r_precision == 0.5
    assert m.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert metrics_of([1, 2], [3]).as_dict() == {"ndcg@10": 0.0, "recall@10": 0.0, "r_precision": 0.0, "mrr": 0.0}


def test_splits_are_seeded_and_keep_enough():
    playlists = {"b": [1, 2, 3, 4, 5, 6], "a": [7, 8, 9], "tiny": [10, 11]}
    first = split_playlists(playlists, seed=3)
    assert first == split_playlists(playlists, seed=3) and [s.name for s in first] == ["a", "b"]
    assert len(first[0].held_out) == 1 and len(first[1].held_out) == 3
    assert split_playlists(playlists, seed=4) != first


def test_the_harness_on_a_fixed_library():
    lib = library()
    splits = [Split("x", (0, 1), (2,)), Split("y", (3, 4), (5,))]
    result = evaluate(lib, splits, weights={"centroid": 1.0, "tags": 1.0}, seed=1)
    # both held-out songs are the closest non-member by the centroid and by tags: rank 1 of 4 every time
    for name in ("centroid", "tags", "weighted", "rrf"):
        assert result[name].as_dict() == {"ndcg@10": 1.0, "recall@10": 1.0, "r_precision": 1.0, "mrr": 1.0}, name
    # tempo: song 2 has no tempo (0.5) against songs 3-5 far off (≈0): still first for x; for y, 5 (84) is first
    assert result["tempo_energy"].mrr == 1.0
    assert evaluate(lib, splits, weights={"centroid": 1.0}, seed=1)["random"] == result["random"]
    assert set(result) >= {"centroid", "nearest_member", "tags", "tempo_energy", "weighted", "rrf", "random",
                           "nearest_neighbour"}


def test_cooccurrence_is_off_below_the_measured_number_of_playlists():
    from discovery.playlist_matching import COOCCURRENCE_MIN_PLAYLISTS, song_cooccurrence

    few = [["a", "b"], ["a", "b", "c"]] * (COOCCURRENCE_MIN_PLAYLISTS // 2 - 1)
    assert len(few) < COOCCURRENCE_MIN_PLAYLISTS and song_cooccurrence(few) is None
    enough = few + [["a", "b"], ["c", "d"]]
    together = song_cooccurrence(enough)
    assert together is not None
    scores = together.scores(["b", "c", "d", "unknown"], ["a"])
    # b is with a more than chance; c less than chance (PPMI clips it); d never shares two playlists with a
    assert scores[0] > 0 and scores[1] == 0 and scores[2] == 0 and scores[3] == 0


def test_rejected_songs_count_against_a_ranking():
    from discovery.ranking_eval import negatives_in_top

    assert negatives_in_top([4, 5, 2, 3], {5, 3}) == 0.5
    lib = library()
    shares: dict[str, float] = {}
    evaluate(lib, [Split("x", (0, 1), (2,))], weights={"centroid": 1.0}, seed=1, negatives={"x": {2, 3}},
             negative_share=shares)
    # four candidates (2-5) in the top 10 of every ranking: the two rejected ones are half of them
    assert shares["centroid"] == 0.5 and shares["random"] == 0.5


def test_embedding_fit_names_the_closest_member_and_averages_the_two_z_scores():
    from discovery.ranking import embedding_fit, zscores

    members = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    candidates = np.array([[0.9, 0.1], [0.6, 0.8], [-1.0, 0.0]], dtype=np.float32)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    fit = embedding_fit(candidates, members)
    assert fit.nearest.tolist() == [0, 1, 1]  # the last one: cosine -1 to the first member, 0 to the second
    np.testing.assert_allclose(fit.score, (zscores(fit.to_centroid) + zscores(fit.nearest_cosine)) / 2, rtol=1e-6)
    # the first is nearly a member (0.99 to it) and leads though the second is closer to the centroid
    np.testing.assert_allclose(fit.score, [0.7423048, 0.6553085, -1.3976132], rtol=1e-5)


def matching(lib: Library, candidate: list[bool]) -> MatchingLibrary:
    """The six songs as the matching job holds them: every row named, members' records by item id."""
    ids = [f"s{i}" for i in range(len(lib))]
    members = {f"s{i}": {"title": f"Song {i}", "artist": "Band", "tags": {"a": float(lib.tags[i, 0])},
                         "moods": {}, "tempo_bpm": None if np.isnan(lib.bpm[i]) else float(lib.bpm[i]),
                         "energy": None if np.isnan(lib.energy[i]) else float(lib.energy[i])} for i in range(len(lib))}
    return MatchingLibrary(lib.vectors, np.arange(len(lib)), ids, ids, ids, np.asarray(candidate),
                           {i: n for n, i in enumerate(ids)}, members)


def test_suggestions_skip_members_decided_pairs_and_songs_that_are_not_candidates():
    from discovery.playlist_matching import SUGGEST_Z, suggest
    from discovery.ranking import embedding_fit

    lib = library()
    songs = matching(lib, [True] * 6)
    profile = profile_of(songs, [0, 2], tag_names=("a",), mood_names=())
    playlist = {"playlist_id": "x", "item_ids": ["s0", "s2"]}
    z = embedding_fit(lib.vectors, lib.vectors[profile.members]).score
    # the members score high too (0.983 both) but are not suggested; song 1 is the one non-member above SUGGEST_Z
    assert [i for i in range(6) if z[i] >= SUGGEST_Z] == [1]
    calls: list[tuple[int, int]] = []
    found = suggest(songs, [(playlist, profile)], decided=set(),
                    progress=lambda done, total: calls.append((done, total)))
    assert found.suggestions == [("s1", "x", 1.0148, ["sounds like the playlist (closer than 84% of your library)",
                                                     "close to Song 0 — Band"])]
    assert found.songs_scored == 6 and found.songs_suggested == 1 and calls == [(1, 1)]
    assert suggest(songs, [(playlist, profile)], decided={("s1", "x")}).suggestions == []
    # song 1 is no candidate (analysed before the cutoff): the others are scored, over the whole library, none fits
    later = suggest(matching(lib, [False, False, True, True, True, True]), [(playlist, profile)], decided=set(),
                    progress=lambda done, total: calls.append((done, total)))
    assert later.songs_scored == 4 and later.suggestions == [] and calls == [(1, 1), (1, 1)]
    assert suggest(matching(lib, [False] * 6), [(playlist, profile)], decided=set(),
                   progress=lambda done, total: calls.append((done, total))).songs_scored == 0
    assert calls == [(1, 1), (1, 1)]  # no song to score: no playlist is matched


def test_a_profile_from_the_members_alone_is_the_profile_from_the_whole_library():
    rng = np.random.default_rng(3)
    n, names, moods = 300, ("rock", "jazz", "pop"), ("happy", "sad")
    vectors = rng.normal(size=(n, 12)).astype(np.float32)
    records = [{"tags": None if i % 17 == 0 else {t: float(rng.random()) for t in names[: 1 + i % 3]},
                "moods": {m: float(rng.random()) for m in moods}, "title": f"T{i}", "artist": "A",
                "tempo_bpm": None if i % 5 == 0 else float(rng.uniform(60, 180)),
                "energy": None if i % 7 == 0 else float(rng.random())} for i in range(n)]
    whole = Library.build(vectors, [[(r["tags"] or {}).get(t, 0.0) for t in names] for r in records],
                          [[r["moods"].get(m, 0.0) for m in moods] for r in records],
                          bpm=[r["tempo_bpm"] for r in records], energy=[r["energy"] for r in records])
    members = [250, 3, 40, 41, 3, 199, 5, 10]
    named = sorted(set(members) | {7, 100})  # the matching job also names its candidates
    ids = [f"s{r}" for r in named]
    songs = MatchingLibrary(whole.vectors, np.asarray(named), ids, ids, ids, np.zeros(len(named), bool),
                            {i: r for r, i in zip(named, ids, strict=True)}, {f"s{r}": records[r] for r in members})
    expected, got = build_profile(whole, members), profile_of(songs, members, tag_names=names, mood_names=moods)
    assert got.members.tolist() == expected.members.tolist() == sorted(set(members))
    for field in ("centroid", "tag_profile"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    for field in ("spread", "bpm_centre", "bpm_spread", "energy_centre", "energy_spread"):
        assert getattr(got, field) == getattr(expected, field), field


def test_embedding_fit_in_chunks_is_the_fit_in_one_product():
    from discovery.ranking import CHUNK_ROWS, embedding_fit, row_chunks, unit_mean, unit_rows

    n = 2 * CHUNK_ROWS + CHUNK_ROWS // 3  # a remainder under half a chunk: it joins the last one
    chunks = list(row_chunks(n))
    assert [(c.start, c.stop) for c in chunks] == [(0, CHUNK_ROWS), (CHUNK_ROWS, n)]
    assert [(c.start, c.stop) for c in row_chunks(5)] == [(0, 5)] and list(row_chunks(0)) == []
    big = 2 * CHUNK_ROWS + CHUNK_ROWS // 2 + 1
    assert [c.stop - c.start for c in row_chunks(big)] == [CHUNK_ROWS, CHUNK_ROWS, CHUNK_ROWS // 2 + 1]
    rng = np.random.default_rng(9)
    candidates = unit_rows(rng.normal(size=(big, 200)))
    for k in (2, 30, 300):
        members = candidates[rng.choice(big, k, replace=False)]
        similarity = candidates @ members.T
        fit = embedding_fit(candidates, members)
        np.testing.assert_array_equal(fit.nearest, similarity.argmax(axis=1))
        np.testing.assert_allclose(fit.nearest_cosine, similarity.max(axis=1), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(fit.to_centroid, candidates @ unit_mean(members), rtol=1e-6, atol=1e-7)


def test_unit_rows_in_place_are_unit_rows():
    from discovery.ranking import CHUNK_ROWS, to_unit_rows, unit_rows

    matrix = np.random.default_rng(2).normal(size=(2 * CHUNK_ROWS + 700, 40)).astype(np.float32)  # two chunks
    matrix[5] = 0.0
    expected = unit_rows(matrix)
    same = matrix
    assert to_unit_rows(matrix) is same
    np.testing.assert_array_equal(matrix, expected)  # the same numbers, not only close ones
    assert not matrix[5].any()


def test_continue_a_playlist_ranks_the_neighbours_that_are_not_members():
    from discovery.playlist_matching import continue_playlist
    from discovery.types import TrackInfo

    lib = library()
    tracks = {f"s{i}": TrackInfo(f"s{i}", f"Song {i}", "Band", lib.vectors[i]) for i in range(6)}

    def lookup(ids):
        return {i: tracks[i] for i in ids if i in tracks}

    def neighbours(vector, k):
        order = np.argsort(-(lib.vectors @ vector), kind="stable")[:k]
        return [(f"s{i}", 0.0) for i in order.tolist()]

    assert continue_playlist(["gone"], n=3, lookup=lookup, neighbours=neighbours, other_playlists=[]) is None
    results, cooccurrence = continue_playlist(["s0", "s1"], n=2, lookup=lookup, neighbours=neighbours,
                                              other_playlists=[])
    # song 2 lies between the members' x and the y-songs; of the y-songs, 4 leans most towards x, 3 least
    assert [c.track.item_id for c in results] == ["s2", "s4"] and cooccurrence is False
    assert [round(c.score, 4) for c in results] == [1.7178, -0.4562]
    assert results[0].reasons == ["close to the playlist's sound (cosine 0.83)", "close to Song 1 — Band"]
    everything, _ = continue_playlist(["s0", "s1"], n=10, lookup=lookup, neighbours=neighbours, other_playlists=[])
    assert [c.track.item_id for c in everything] == ["s2", "s4", "s5", "s3"]
