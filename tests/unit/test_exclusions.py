"""Blocklists and scope (discovery/exclusions.py): the comparison rules, how a request merges with the settings, the
catalogue-wide mask, and the index seam that gives every index-based list k allowed neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from discovery.catalog import Catalog
from discovery.exclusions import Exclusions, MaskCache, allowed_mask, join_names, split_names
from discovery.types import DiscoveryError
from voyager_manager import LoadedIndex, build_index


def test_names_split_on_commas_and_lines_and_a_comma_can_be_escaped() -> None:
    assert split_names(" ABBA, Earth\\, Wind & Fire ,\nQueen\n\n ") == ["ABBA", "Earth, Wind & Fire", "Queen"]
    assert split_names(join_names(["Crosby, Stills", " Nash "])) == ["Crosby, Stills", "Nash"]


def test_each_kind_of_name_compares_by_its_rule() -> None:
    ex = Exclusions.of(artists=["beyonce"], albums=["Noël  Hits"], genres=["hip-hop"])
    assert not ex.allows(artist="Beyoncé feat. Jay-Z")  # as the artist cap compares: accents, feat. ignored
    assert ex.allows(artist="Beyoncé Tribute Band")
    assert not ex.allows(artist="X", album="NOEL HITS") and ex.allows(artist="X", album="Noel Hits 2")
    assert not ex.allows(genres=["Rock", "Hip-Hop"]) and ex.allows(genres=["Hip Hop"])
    assert Exclusions().allows(artist="anyone") and not Exclusions().active


def test_folders_are_path_prefixes_absolute_or_at_any_depth() -> None:
    ex = Exclusions.of(folders=["/music/Podcasts/", "Live"])
    assert not ex.allows(path="/music/Podcasts/show/ep1.mp3")
    assert not ex.allows(path="/music/podcasts/ep2.mp3")  # case-insensitive
    assert ex.allows(path="/music/PodcastsX/ep3.mp3") and ex.allows(path="/other/music/Podcasts/a.mp3")
    assert not ex.allows(path="Queen/Live/01.flac") and not ex.allows(path="D:\\Music\\Queen\\Live\\01.flac")
    assert ex.allows(path="/music/Queen/Alive/01.flac") and ex.allows(path=None)
    scoped = Exclusions.of(scope_folders=["/music/Rock"])
    assert scoped.allows(path="/music/Rock/a/b.mp3") and not scoped.allows(path="/music/Jazz/a.mp3")
    assert not scoped.allows(path=None)  # no path: not inside the scope


def test_library_scope_and_maximum_length() -> None:
    ex = Exclusions.of(libraries=["music"], max_duration=1800)
    assert ex.allows(library="Music", duration=1800.0) and ex.allows(library="MUSIC", duration=None)
    assert not ex.allows(library="Audiobooks") and not ex.allows(library=None)  # unknown library: outside
    assert not ex.allows(library="Music", duration=7200.0)
    with pytest.raises(DiscoveryError) as error:
        Exclusions.of(max_duration=0)
    assert error.value.parameter == "max_duration"
    with pytest.raises(DiscoveryError, match="artists"):
        Exclusions.of(artists=["x" * 501])


def test_a_request_adds_to_the_blocklists_and_narrows_the_scope() -> None:
    saved = Exclusions.of(artists=["ABBA"], libraries=["Music", "Live"], scope_folders=["/music"], max_duration=900)
    request = Exclusions.of(artists=["abba", "Queen"], libraries=["live", "Spoken"],
                            scope_folders=["/music/Rock", "/films"], max_duration=1800)
    merged = saved.merged(request)
    assert merged.artists == ("ABBA", "Queen")
    assert merged.libraries == ("live",)  # Spoken is outside the saved scope: a request cannot widen it
    assert merged.scope_folders == ("/music/Rock",)
    assert merged.max_duration == 900
    nothing = Exclusions.of(libraries=["Music"]).merged(Exclusions.of(libraries=["Spoken"]))
    assert nothing.libraries == () and not nothing.allows(library="Music")
    assert Exclusions().merged(request).libraries == request.libraries
    assert saved.merged(Exclusions()) == saved


def row(item_id: str, artist: str, *, album: str = "", genres: list[str] | None = None, path: str | None = None,
        library: str | None = None, duration: float | None = 200.0) -> tuple[object, ...]:
    """A db.tracks.catalog_rows tuple with the exclusion columns at its end."""
    return (item_id, True, f"Song {item_id}", artist, album, duration, 120.0, "8A", 0.5, {}, genres or [], path,
            library)


ROWS = [
    row("a", "ABBA", path="/m/Pop/a.mp3", library="Music"),
    row("b", "Queen", album="Live Killers", path="/m/Rock/b.mp3", library="Music"),
    row("c", "Orb", genres=["Ambient", "Chill"], path="/m/Ambient/c.mp3", library="Music"),
    row("d", "DJ", path="/m/Mixes/d.mp3", library="Music", duration=7200.0),
    row("e", "Reader", path="/books/e.mp3", library="Audiobooks"),
    row("f", "Mystery", path=None, library=None, duration=None),
]


def test_the_catalogue_mask_is_the_rule_applied_to_every_track() -> None:
    catalog = Catalog.build([str(r[0]) for r in ROWS], iter(ROWS))
    cases = [
        Exclusions.of(artists=["abba"]), Exclusions.of(albums=["LIVE KILLERS"]), Exclusions.of(genres=["chill"]),
        Exclusions.of(folders=["/m/Rock"]), Exclusions.of(libraries=["music"]), Exclusions.of(max_duration=3600),
        Exclusions.of(scope_folders=["Mixes", "/books"]),
    ]
    for ex in cases:
        result = allowed_mask(catalog.exclusion_columns(), ex)
        expected = [ex.allows(artist=str(r[3]), album=str(r[4]), genres=r[10], path=r[11],  # type: ignore[arg-type]
                              library=r[12], duration=r[5]) for r in ROWS]  # type: ignore[arg-type]
        assert result.allowed.tolist() == expected, ex
        assert result.excluded == expected.count(False)
    library = allowed_mask(catalog.exclusion_columns(), Exclusions.of(libraries=["Music", "Podcasts"]))
    assert [catalog.item_id(p) for p in np.flatnonzero(library.allowed)] == ["a", "b", "c", "d"]
    assert any("1 of 6 tracks have no known library" in w for w in library.warnings)
    assert any("no track is in the libraries Podcasts" in w for w in library.warnings)
    assert catalog.library(4) == "Audiobooks" and catalog.library(5) is None


def test_masks_are_cached_per_meaning_not_per_spelling() -> None:
    cache = MaskCache(size=2)
    built: list[int] = []
    catalog = Catalog.build([str(r[0]) for r in ROWS], iter(ROWS))

    def build(ex: Exclusions):  # type: ignore[no-untyped-def]
        built.append(1)
        return allowed_mask(catalog.exclusion_columns(), ex)

    first = Exclusions.of(artists=["ABBA"])
    again = Exclusions.of(artists=["abba "])
    assert cache.get(first, lambda: build(first)) is cache.get(again, lambda: build(again))
    assert len(built) == 1


def test_neighbours_skip_what_is_excluded_and_still_give_k_while_lookups_find_everything() -> None:
    # 40 tracks on an arc; every even one by the blocked artist: the nearest 5 allowed are the odd ones in order
    rows, vectors = [], []
    for i in range(40):
        angle = i * np.pi / 2 / 39
        vectors.append([np.cos(angle), np.sin(angle), 0.0, 0.0])
        rows.append(row(f"t{i:02d}", "Blocked" if i % 2 == 0 else f"Artist {i}"))
    ids = [str(r[0]) for r in rows]
    loaded = LoadedIndex(name="x", index=build_index(ids, np.asarray(vectors, dtype=np.float32)),
                         catalog=Catalog.build(ids, iter(rows)), sha256="")
    queries = loaded.queries(query_ef=100, exclusions=Exclusions.of(artists=["blocked"]))
    seed = queries.lookup(["t00"])["t00"]  # a blocked seed the user names is still found
    assert [i for i, _ in queries.neighbours(seed.vector, 5)] == ["t01", "t03", "t05", "t07", "t09"]
    assert len(queries.neighbours(seed.vector, 30)) == 20  # all there are
    assert not queries.allows("t00") and queries.allows("t01") and queries.allowed_lookup(["t00", "t01"]).keys() == {
        "t01"}
    assert queries.mask is not None and queries.mask.excluded == 20
    plain = loaded.queries(query_ef=100)
    assert [i for i, _ in plain.neighbours(seed.vector, 3)] == ["t00", "t01", "t02"] and plain.mask is None
