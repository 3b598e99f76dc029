"""What database cleaning may remove: the analyzed tracks the media server no longer lists, grouped by artist and
album, capped by the safety limit — and nothing at all when the listing is doubtful (incomplete, empty, or far
smaller than the library: a server that is down, restarting or pointing at an unmounted disk must never wipe it).

Pure: the task gives it the listing and the analyzed tracks, and deletes what the plan says."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AnalyzedTrack", "CleaningPlan", "Listing", "orphan_digest", "plan_cleaning", "previewed_ids"]


@dataclass(frozen=True)
class AnalyzedTrack:
    item_id: str
    title: str
    artist: str
    album: str


@dataclass(frozen=True)
class Listing:
    """What the media server listed: the item ids of every track, and whether the listing is whole (every album
    answered; no timeout, no 5xx) with the reasons when it is not."""

    item_ids: frozenset[str]
    albums: int
    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class CleaningPlan:
    orphans: tuple[AnalyzedTrack, ...]  # every analyzed track the server no longer lists, by artist, album, title
    to_delete: tuple[str, ...]  # the item ids a confirmed run deletes (at most the safety limit); () when refused
    refused: str | None  # why nothing may be deleted, or None
    warnings: tuple[str, ...] = ()
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # artist → album → orphans

    @property
    def digest(self) -> str:
        return orphan_digest(self.to_delete)


def orphan_digest(item_ids: Iterable[str]) -> str:
    """A short fingerprint of a set of item ids: the confirmed run deletes only what the preview showed."""
    return hashlib.sha256("\n".join(sorted(item_ids)).encode()).hexdigest()[:16]


def previewed_ids(task_row: dict[str, Any] | None, *, task_type: str) -> list[str] | None:
    """The item ids a cleaning dry run (its task_status row) would delete; None when the row is not a dry run of
    `task_type` that finished."""
    result = task_row.get("result") if task_row else None
    if not task_row or task_row.get("task_type") != task_type or task_row.get("status") != "SUCCESS" \
            or not isinstance(result, dict) or not result.get("dry_run"):
        return None
    return [str(i) for i in result.get("to_delete") or []]


def plan_cleaning(listing: Listing, analyzed: Sequence[AnalyzedTrack], *, safety_limit: int,
                  min_remaining_fraction: float) -> CleaningPlan:
    """The plan for `analyzed` against `listing`. Refused (nothing to delete) when the listing is incomplete, lists
    no album, or would leave fewer than `min_remaining_fraction` of the analyzed tracks; capped at `safety_limit`
    deletions otherwise (with a warning saying how many wait for the next run)."""
    orphans = tuple(sorted((t for t in analyzed if t.item_id not in listing.item_ids),
                           key=lambda t: (t.artist.lower(), t.album.lower(), t.title.lower(), t.item_id)))
    groups: dict[str, dict[str, int]] = {}
    for track in orphans:
        albums = groups.setdefault(track.artist or "(unknown artist)", {})
        albums[track.album or "(unknown album)"] = albums.get(track.album or "(unknown album)", 0) + 1
    refused = None
    if not listing.complete:
        refused = "the media server's listing was incomplete (" + "; ".join(listing.problems[:3]) + \
            (f"; and {len(listing.problems) - 3} more" if len(listing.problems) > 3 else "") + ")"
    elif listing.albums == 0 or not listing.item_ids:
        refused = "the media server listed no albums (down, restarting, or its library is not mounted?)"
    elif analyzed:
        remaining = (len(analyzed) - len(orphans)) / len(analyzed)
        if remaining < min_remaining_fraction:
            refused = (f"only {remaining:.0%} of the analyzed tracks are still on the media server, below "
                       f"CLEANING_MIN_REMAINING_FRACTION={min_remaining_fraction:g}")
    if refused:
        return CleaningPlan(orphans, (), f"Nothing deleted: {refused}.", (), groups)
    warnings: tuple[str, ...] = ()
    to_delete = tuple(t.item_id for t in orphans[:safety_limit])
    if len(orphans) > safety_limit:
        warnings = (f"{len(orphans)} orphaned tracks found; this run removes {safety_limit} "
                    f"(CLEANING_SAFETY_LIMIT), the next run the rest",)
    return CleaningPlan(orphans, to_delete, None, warnings, groups)
