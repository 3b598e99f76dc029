"""Text search without CLAP: the numpy sentence encoder against transformers' output, and the concept ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio.moods import MOODS
from audio.musicnn import MSD_TAGS
from discovery.sentence_encoder import SentenceEncoder
from discovery.text_search import TextSearchEngine, build_concepts, concept_scores, concept_texts
from discovery.types import DiscoveryError
from services.text_search import concept_engine_loader

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(MODELS / "minilm")  # unpacked by scripts/install.sh (models/fetch_text_model.py)


@pytest.fixture(scope="module")
def engine() -> TextSearchEngine:
    made = concept_engine_loader(MODELS / "minilm")()  # as the web process loads it: the concepts of the analysis
    assert made.concepts == build_concepts(MSD_TAGS, MOODS)
    return made


def test_the_numpy_encoder_matches_transformers(encoder):
    reference = np.load(MODELS / "minilm_reference.npz")
    mine = encoder.encode(list(reference["sentences"]))
    assert mine.shape == (12, 384) and mine.dtype == np.float32
    np.testing.assert_allclose(mine, reference["embeddings"], atol=1e-5)
    alone = np.stack([encoder.encode([s])[0] for s in reference["sentences"]])  # padding changes nothing
    np.testing.assert_allclose(alone, mine, atol=1e-5)


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(DiscoveryError, match="fetch_text_model.py"):
        SentenceEncoder(tmp_path)


def test_a_text_model_loaded_again_reuses_its_concept_vectors(engine):
    again = concept_engine_loader(MODELS / "minilm")()  # loaded again, as after an idle unload
    assert again.text_vectors is engine.text_vectors, "the concept wordings were embedded again"
    assert again.encode is not engine.encode  # a new encoder all the same (the old one's weights were let go)


def test_text_vectors_of_other_concepts_are_refused(encoder):
    concepts = build_concepts(["jazz", "rock"], ["sad"])
    vectors = encoder.encode(concept_texts(concepts))
    assert TextSearchEngine(encoder.encode, concepts, text_vectors=vectors).text_vectors is vectors
    with pytest.raises(DiscoveryError, match="not those of these concepts"):
        TextSearchEngine(encoder.encode, concepts[:2], text_vectors=vectors)


@pytest.mark.parametrize(("query", "meant"), [
    ("dark ambient", "ambient"), ("sad songs", "sad"), ("orchestral", "instrumental"), ("chiptune", "electronic"),
    ("heavy metal", "heavy metal"), ("jazz", "jazz"), ("calm piano", "acoustic"),
    ("upbeat electronic dance", "house"),
])
def test_queries_mean_the_concepts_a_listener_would_expect(engine, encoder, query, meant):
    weights = engine.weights(encoder.encode([query])[0])
    named = {engine.concepts[i].name: w for i, w in weights.items()}
    assert max(named, key=named.get) == meant
    assert abs(sum(named.values()) - 1) < 1e-6 and len(named) <= 6


def test_percentiles_rank_tracks_within_the_library_and_unknowns_lowest():
    concepts = build_concepts(["jazz"], ["sad"])
    scores = concept_scores(concepts, tags=[{"jazz": 0.1}, {"jazz": 0.3}, {"jazz": 0.2}, None],
                            moods=[{"sad": 0.5}] * 4, tempo=[60, 180, 120, None], energy=[0.1, 0.9, 0.5, 0.5],
                            scale=["major", "minor", "minor", None])
    names = [c.name for c in concepts]
    col = {n: scores.matrix[:, i].tolist() for i, n in enumerate(names)}
    assert col["jazz"] == [0, 255, 128, 0]  # 0.1 < 0.2 < 0.3; the track without tags is not ranked
    assert col["sad"] == [0, 0, 0, 0]  # all alike: nobody is sadder than the rest
    assert col["slow"] == [255, 0, 128, 0] and col["fast"] == [0, 255, 128, 0]
    assert col["calm"][0] == 255 and col["energetic"][1] == 255
    assert col["minor key"][1] == col["minor key"][2] > col["minor key"][0]
    lacking = concept_scores(concepts, tags=[{"jazz": 0.9}, {}, {}, {"jazz": 0.9}], moods=[{}] * 4,
                             tempo=[None] * 4, energy=[None] * 4, scale=[None] * 4)
    assert lacking.matrix[:, 0].tolist() == [170, 0, 0, 170]  # a missing tag score is none of it


def test_search_ranks_by_the_meant_concepts_and_says_why(engine, encoder):
    concepts = engine.concepts
    n = 30
    rng = np.random.default_rng(0)
    tags = [{t: float(rng.random() * 0.2) for t in MSD_TAGS} for _ in range(n)]
    tags[7]["ambient"] = 0.9
    tags[3]["ambient"] = 0.7
    scores = concept_scores(concepts, tags=tags, moods=[{}] * n, tempo=[120] * n, energy=[0.5] * n,
                            scale=["major"] * n)
    hits, weights = engine.search(encoder.encode(["dark ambient"])[0], scores, limit=5)
    assert [h.position for h in hits[:2]] == [7, 3] and len(hits) == 5
    assert all(h.similarity > 0 for h in hits)
    assert hits[0].similarity >= hits[1].similarity >= hits[-1].similarity
    assert hits[0].because[0] == ("ambient", 1.0) and "ambient" in weights
    allowed = np.ones(n, dtype=bool)
    allowed[7] = False
    again, _ = engine.search(encoder.encode(["dark ambient"])[0], scores, limit=5, allowed=allowed)
    assert again[0].position == 3
    empty = concept_scores(concepts, tags=[], moods=[], tempo=[], energy=[], scale=[])
    assert engine.search(encoder.encode(["jazz"])[0], empty, limit=5)[0] == []


def test_keyword_index_finds_fields_in_rank_order_once_each():
    from discovery.keyword_index import KeywordIndex, fold

    names = [("Swing Low", "Ella", "Jazz Nights"), None, ("Jazz", "Ann", "Blue"), ("Blue Jazz Hour", "Zed", "Jazz"),
             ("Night", "Jazzmin", "X"), ("Œuvre Ĳ", "Björk", "Ça")]
    index = KeywordIndex.build(names)
    assert len(index) == 5 and fold("SWÏNG Œuvre ß") == "swing oeuvre ss"
    # title matches (shorter titles first), then artists, then albums; the Jazz-titled track once despite its album
    assert index.search("JAZZ", limit=10) == [(2, "title"), (3, "title"), (4, "artist"), (0, "album")]
    assert index.search("jazz", limit=2) == [(2, "title"), (3, "title")]
    assert index.search("bjork", limit=5) == [(5, "artist")] and index.search("oeuvre", limit=5) == [(5, "title")]
    assert index.search("ca", limit=5) == [(5, "album")]
    assert index.search("zzz", limit=5) == [] and index.search("  ", limit=5) == []
    # no match spans two tracks' fields
    assert index.search("lowjazz", limit=5) == [] and index.search("hour\x1fnight", limit=5) == []


def test_genre_names_split_and_dedupe():
    from mediaservers.values import genre_names

    assert genre_names("Rock; Pop", ["pop", "Jazz/Blues"], [{"name": "Soul"}], None, 3) == (
        "Rock", "Pop", "Jazz", "Blues", "Soul")
    assert genre_names(None) == () and genre_names("") == ()


def test_recommended_tags_leave_out_what_the_genres_say():
    from discovery.recommended_tags import recommended_tags

    tags = {"rock": 0.6, "alternative rock": 0.5, "Hip-Hop": 0.4, "jazz": 0.3, "guitar": 0.3, "80s": 0.05}
    assert recommended_tags(tags, [], limit=10) == [("rock", 0.6), ("alternative rock", 0.5), ("Hip-Hop", 0.4),
                                                    ("guitar", 0.3), ("jazz", 0.3)]  # 80s is below the floor
    assert recommended_tags(tags, ["Alternative Rock", "hip hop"], limit=2) == [("guitar", 0.3), ("jazz", 0.3)]
    assert recommended_tags(tags, ["Rock"], limit=1) == [("alternative rock", 0.5)]  # not all its words said


@pytest.mark.parametrize("query", ["xqzvbnm", "asdkjh qwpoeiru", "flibbertigibbet wumpus", "dfgdfg",
                                   "lorem ipsum dolor", "my tax return", "quantum physics"])
def test_a_query_near_no_concept_is_not_understood(engine, encoder, query):
    vector = encoder.encode([query])[0]
    assert engine.weights(vector) == {} and not engine.understands(vector)
    scores = concept_scores(engine.concepts, tags=[{"blues": 0.9}, {"jazz": 0.9}], moods=[{}, {}], tempo=[90, 120],
                            energy=[0.5, 0.6], scale=["major", "minor"])
    assert engine.search(vector, scores, limit=10) == ([], {})


@pytest.mark.parametrize("query", ["jazz", "sad songs", "songs for a rainy day", "80s", "calm piano", "Daft Punk",
                                   "workout", "tranquil lullabies for a rainy afternoon"])
def test_a_query_a_concept_is_near_is_understood(engine, encoder, query):
    vector = encoder.encode([query])[0]
    assert engine.understands(vector) and engine.weights(vector)


@pytest.mark.parametrize("query", ["heavy guitars", "distorted guitar", "crunchy distorted guitars", "heavy riffs"])
def test_heavy_guitars_mean_rock_and_metal_not_acoustic(engine, encoder, query):
    weights = engine.weights(encoder.encode([query])[0])
    named = {engine.concepts[i].name: w for i, w in weights.items()}
    heavy = sum(w for name, w in named.items() if name in ("rock", "hard rock", "metal", "heavy metal"))
    assert heavy >= 0.5 and named.get("acoustic", 0.0) < 0.1, named
    soft = {engine.concepts[i].name: w for i, w in engine.weights(encoder.encode(["acoustic guitar"])[0]).items()}
    assert max(soft, key=soft.get) == "acoustic"  # an acoustic guitar stays acoustic
