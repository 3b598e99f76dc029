"""Catalog.updated (an index updated in place) answers as a catalogue built from all the rows does."""

from __future__ import annotations

import random
from typing import Any

import pytest

from discovery.catalog import DELETED, Catalog
from discovery.types import DiscoveryError
from tests.catalog_answers import catalog_answers

GENRES = ["rock", "jazz", "ambient", "pop", "Folk"]
MOODS = ["happy", "sad", "relaxed", "aggressive", "party"]


def _row(rng: random.Random, item_id: str, *, tag: int = 0) -> tuple[Any, ...]:
    if item_id == DELETED:
        return (DELETED, False, *([None] * 13))
    if rng.random() < 0.05:  # indexed, but gone from the tracks table
        return (item_id, False, *([None] * 13))
    artist = f"Artist {rng.randrange(12)}" + (" feat. Guest" if rng.random() < 0.1 else "")
    title = rng.choice(["Song", "Intro", "Blue", "Ça ira", "Song (Live)"]) + f" {rng.randrange(20)}{'x' * tag}"
    moods = {m: round(rng.random(), 3) for m in rng.sample(MOODS, rng.randrange(4))}
    if rng.random() < 0.05:
        moods[f"new mood {tag}"] = 0.5
    extension = rng.choice(["flac", "mp3", "ogg"])
    return (item_id, True, title, artist, rng.choice(["Album A", "Album B", None]),
            rng.choice([200.5, None, 31.0]), rng.choice([120.0, None, 95.5]), rng.choice(["8A", "3B", None]),
            rng.random(), moods, rng.sample(GENRES + [f"genre {tag}"], rng.randrange(3)),
            f"/music/{artist}/{rng.randrange(3)}/{item_id}.{extension}", rng.choice(["main", "kids", None]),
            None, None)


def _with_groups(rows: list[tuple[Any, ...]], rng: random.Random) -> list[tuple[Any, ...]]:
    """Some live tracks grouped as copies of another's recording and versions of another's song."""
    live = [r[0] for r in rows if r[1]]
    out = []
    for r in rows:
        if r[1] and rng.random() < 0.15 and live:
            recording = rng.choice(live)
            song = rng.choice(live) if rng.random() < 0.5 else None
            r = (*r[:13], recording, song)
        out.append(r)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_an_updated_catalogue_answers_as_a_fresh_build(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([0, 1, 30, 120])
    ids = [f"id{rng.randrange(10**6):06d}-{i}" for i in range(size)]
    rows = _with_groups([_row(rng, i) for i in ids], rng)
    before = Catalog.build(ids, iter(rows))
    # an update in place: some positions deleted (removed or re-analyzed), some rows changed (renamed, regrouped),
    # new tracks appended (a re-analyzed one comes back under its own id at a new position)
    new_ids = list(ids)
    new_rows = list(rows)
    changed: set[int] = set()
    for p in range(size):
        roll = rng.random()
        if roll < 0.15 and new_ids[p] != DELETED:
            new_ids[p], new_rows[p] = DELETED, _row(rng, DELETED)
            changed.add(p)
        elif roll < 0.3:
            new_rows[p] = _row(rng, new_ids[p], tag=1)
            changed.add(p)
    back = [ids[p] for p in sorted(changed) if new_ids[p] == DELETED][:3]
    added = back + [f"new{rng.randrange(10**6):06d}-{i}" for i in range(rng.randrange(15))]
    for item_id in added:
        new_ids.append(item_id)
        new_rows.append(_row(rng, item_id, tag=1))
        changed.add(len(new_ids) - 1)
    regrouped = _with_groups(new_rows, rng)  # version groups are recomputed over every track at an update
    changed |= {p for p, (a, b) in enumerate(zip(new_rows, regrouped, strict=True)) if a != b}
    positions = sorted(changed)
    updated = before.updated(new_ids, (regrouped[p] for p in positions), positions)
    fresh = Catalog.build(new_ids, iter(regrouped))
    every_id = sorted(set(ids) | set(new_ids) - {DELETED})
    assert catalog_answers(updated, every_id) == catalog_answers(fresh, every_id)
    # and again on top of the updated one: the spliced arrays are a catalogue like any other
    again_ids = new_ids + ["late-1"]
    again_rows = regrouped + [_row(rng, "late-1", tag=2)]
    last = updated.updated(again_ids, [again_rows[-1]], [len(again_ids) - 1])
    assert catalog_answers(last, every_id + ["late-1"]) == catalog_answers(Catalog.build(again_ids, iter(again_rows)),
                                                              every_id + ["late-1"])


def test_an_update_without_a_new_position_is_refused() -> None:
    rng = random.Random(1)
    ids = ["a", "b"]
    catalog = Catalog.build(ids, iter([_row(rng, i) for i in ids]))
    with pytest.raises(DiscoveryError):
        catalog.updated(ids + ["c"], [], [])  # the new position's row is missing
    with pytest.raises(DiscoveryError):
        catalog.updated(["a"], [], [])  # an update in place never drops a position
    with pytest.raises(DiscoveryError):
        catalog.updated(ids, [_row(rng, "x")], [1])  # the row is not the item the index holds there


@pytest.mark.parametrize("seed", range(6))
def test_positions_in_another_catalogue_name_the_same_tracks(seed: int) -> None:
    rng = random.Random(seed)
    # ids whose UTF-8 bytes and code points must sort alike: accents, CJK, an astral emoji, a prefix of another
    alphabet = ["a", "b", "Z", "é", "ē", "中", "🎵", "-", "0"]
    ids = list(dict.fromkeys("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 5)))
                             for _ in range(rng.choice([0, 5, 80]))))
    rng.shuffle(ids)
    old_ids = [DELETED if rng.random() < 0.1 else i for i in ids]  # holes of an update in place
    before = Catalog.build(old_ids, iter([_row(rng, i) for i in old_ids]))
    # and the same catalogue updated in place (its id order spliced, not sorted): a few deleted, a few added
    grown_ids = [DELETED if i != DELETED and rng.random() < 0.1 else i for i in old_ids] + ["late-é", "late-a"]
    changed = [p for p in range(len(grown_ids)) if p >= len(old_ids) or grown_ids[p] != old_ids[p]]
    updated = before.updated(grown_ids, [_row(rng, grown_ids[p]) for p in changed], changed)
    kept = [i for i in ids + ["late-é", "late-a"] if rng.random() < 0.8]
    new_ids = kept + [f"new-{n}" for n in range(3)] + [DELETED, DELETED]
    rng.shuffle(new_ids)
    after = Catalog.build(new_ids, iter([_row(rng, i) for i in new_ids]))
    for catalogue, held in ((before, old_ids), (updated, grown_ids)):
        expected = [new_ids.index(i) if i != DELETED and i in new_ids else -1 for i in held]
        assert catalogue.positions_in(after).tolist() == expected
