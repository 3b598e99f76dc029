"""The cleaning plan: orphans found and grouped, and nothing deleted when the media server's listing is doubtful."""

from __future__ import annotations

from discovery.cleaning import AnalyzedTrack, Listing, orphan_digest, plan_cleaning

LIBRARY = [AnalyzedTrack(f"t{i}", f"Song {i}", f"Artist {i % 3}", f"Album {i % 6}") for i in range(20)]


def listing(missing: set[str], *, problems: tuple[str, ...] = (), albums: int = 6) -> Listing:
    return Listing(frozenset(t.item_id for t in LIBRARY if t.item_id not in missing), albums, problems)


def plan(server: Listing, **limits):  # type: ignore[no-untyped-def]
    return plan_cleaning(server, LIBRARY, **{"safety_limit": 100, "min_remaining_fraction": 0.5, **limits})


def test_orphans_are_found_grouped_and_planned_for_deletion():
    result = plan(listing({"t1", "t4", "t7"}))
    assert result.refused is None and result.warnings == ()
    assert [t.item_id for t in result.orphans] == ["t1", "t7", "t4"]  # by artist, album, title
    assert result.to_delete == ("t1", "t7", "t4")
    assert result.groups == {"Artist 1": {"Album 1": 2, "Album 4": 1}}
    assert result.digest == orphan_digest(["t7", "t1", "t4"]) != orphan_digest(["t1", "t4"])
    assert plan(listing(set())).to_delete == () and plan(listing(set())).orphans == ()


def test_the_safety_limit_caps_a_run_and_says_so():
    result = plan(listing({"t1", "t4", "t7", "t10"}), safety_limit=2)
    assert len(result.orphans) == 4 and result.to_delete == ("t1", "t7")
    assert "4 orphaned tracks found; this run removes 2 (CLEANING_SAFETY_LIMIT)" in result.warnings[0]


def test_a_doubtful_listing_deletes_nothing():
    partial = plan(listing({"t1"}, problems=("album Album 3: HTTP 503", "album Album 5: timed out")))
    assert partial.to_delete == () and "incomplete (album Album 3: HTTP 503; album Album 5: timed out)" in \
        partial.refused and [t.item_id for t in partial.orphans] == ["t1"]  # still shown in the preview
    empty = plan(Listing(frozenset(), 0))
    assert empty.to_delete == () and "listed no albums" in empty.refused and len(empty.orphans) == 20
    unmounted = plan(listing({f"t{i}" for i in range(11)}))  # 45 % left, below 0.5
    assert unmounted.to_delete == () and "only 45% of the analyzed tracks" in unmounted.refused
    assert plan(listing({f"t{i}" for i in range(10)})).refused is None  # exactly half left: allowed
    many = plan(listing(set(), problems=tuple(f"album {i} failed" for i in range(5))))
    assert many.refused.endswith("album 2 failed; and 2 more).")
