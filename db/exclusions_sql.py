"""The blocklists and scope (discovery.exclusions) as a WHERE clause on the tracks table, for the lists PostgreSQL
makes (smart playlists, playlist suggestions, clustering's candidates).

The rule is never written twice: the names are resolved to the values the table holds (its distinct artists,
albums, genres, folders and libraries, each tested by `Exclusions`' own methods), and the clause compares those
values exactly. Every value is a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db.pool import Database
from discovery.exclusions import Exclusions


def directory_sql(alias: str = "t") -> str:
    """The folder of a track's file in SQL, as discovery.exclusions.directory_of computes it ("\\" read as "/")."""
    path = f"replace(coalesce({alias}.file_path, ''), chr(92), '/')"
    return f"(CASE WHEN strpos({path}, '/') > 0 THEN regexp_replace({path}, '/[^/]*$', '') ELSE '' END)"


def _distinct(db: Database, expression: str) -> list[str]:
    rows = db.fetch_all(f"SELECT DISTINCT {expression} AS value FROM tracks t")
    return [r["value"] for r in rows if r["value"] is not None]


def exclusion_sql(db: Database, exclusions: Exclusions | None, *, alias: str = "t") -> tuple[list[str],
                                                                                              dict[str, Any]]:
    """WHERE conditions (to AND) on `alias` (a tracks row) keeping only what `exclusions` allow, and their named
    parameters (ex_*); ([], {}) for none. Reads the distinct values it needs from `db` first."""
    if exclusions is None or not exclusions.active:
        return [], {}
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if exclusions.artists:
        params["ex_artists"] = [a for a in _distinct(db, "t.artist") if exclusions.blocks_artist(a)]
        clauses.append(f"coalesce({alias}.artist, '') <> ALL(%(ex_artists)s::text[])")
    if exclusions.albums:
        params["ex_albums"] = [a for a in _distinct(db, "t.album") if exclusions.blocks_album(a)]
        clauses.append(f"coalesce({alias}.album, '') <> ALL(%(ex_albums)s::text[])")
    if exclusions.genres:
        params["ex_genres"] = [g for g in _distinct(db, "unnest(t.genres)") if exclusions.blocks_genre(g)]
        clauses.append(f"NOT (coalesce({alias}.genres, '{{}}') && %(ex_genres)s::text[])")
    if exclusions.folders or exclusions.scope_folders is not None:
        directories = _distinct(db, directory_sql("t"))
        good = [d for d in directories if exclusions.allows_directory(d)]
        bad = [d for d in directories if not exclusions.allows_directory(d)]
        # the shorter list: a scope of one folder keeps few, a blocked folder drops few
        if len(good) < len(bad):
            params["ex_directories"] = good
            clauses.append(f"{directory_sql(alias)} = ANY(%(ex_directories)s::text[])")
        else:
            params["ex_directories"] = bad
            clauses.append(f"{directory_sql(alias)} <> ALL(%(ex_directories)s::text[])")
    if exclusions.libraries is not None:
        params["ex_libraries"] = [name for name in _distinct(db, "t.library") if exclusions.allows_library(name)]
        clauses.append(f"{alias}.library = ANY(%(ex_libraries)s::text[])")  # an unknown library is outside
    if exclusions.max_duration is not None:
        params["ex_max_duration"] = exclusions.max_duration
        clauses.append(f"({alias}.duration_seconds IS NULL OR {alias}.duration_seconds <= %(ex_max_duration)s)")
    return clauses, params


def allowed_item_ids(db: Database, exclusions: Exclusions | None, item_ids: Sequence[str]) -> set[str]:
    """Those of `item_ids` that `exclusions` allow (all of them when there are none; unknown ids are left out
    only then)."""
    if exclusions is None or not exclusions.active:
        return set(item_ids)
    clauses, params = exclusion_sql(db, exclusions)
    rows = db.fetch_all(f"SELECT t.item_id FROM tracks t WHERE t.item_id = ANY(%(ids)s::text[]) AND "
                        f"{' AND '.join(clauses)}", {**params, "ids": list(item_ids)})
    return {r["item_id"] for r in rows}
