"""The second line of defence of the instant-playlist chat: a validated query (db/chat_sql.py) runs as a role that
may read only the chat_tracks view, in a READ ONLY transaction with a statement timeout, its parameters bound to a
prepared statement (values can never become SQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql

from db.chat_sql import CHAT_VIEW, ValidatedQuery
from db.criteria_sql import energy_value_sql
from db.pool import Database
from discovery.criteria import ENERGY_RULE

_STATEMENT = "audiomuse_chat_query"


@dataclass(frozen=True)
class ChatRole:
    """Whether the chat's role exists and this connection may switch to it; if not, why, and the SQL an operator
    runs once (as a superuser) to set it up."""

    name: str
    ready: bool
    problem: str | None
    operator_sql: str


def operator_sql(role: str, database_user: str) -> str:
    """The statements that give `role` SELECT on the chat view only and let `database_user` switch to it."""
    ident = _quote(role)
    return (f"CREATE ROLE {ident} NOLOGIN;\n"
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ident};\n"
            f"GRANT USAGE ON SCHEMA public TO {ident};\n"
            f"GRANT SELECT ON {CHAT_VIEW} TO {ident};\n"
            f"GRANT {ident} TO {_quote(database_user)};")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def ensure_chat_role(db: Database, role: str, password: str = "") -> ChatRole:
    """Create the chat's role if it is missing and grant it SELECT on the chat view only (idempotent). On a server
    where this user may not create roles, the role is reported as not ready with the SQL for the operator."""
    user_row = db.fetch_one("SELECT current_user AS name")
    user = str(user_row["name"]) if user_row else ""
    wanted = operator_sql(role, user)
    try:
        with db.transaction() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                login = sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL("NOLOGIN")
                cur.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(role), login))
            elif password:
                cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                              sql.Literal(password)))
            cur.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(CHAT_VIEW), sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(user)))
    except psycopg2.errors.InsufficientPrivilege as exc:
        return ChatRole(role, _can_switch(db, role), f"{user} may not set up the role {role}: "
                        f"{str(exc).splitlines()[0]}", wanted)
    return ChatRole(role, _can_switch(db, role), None, wanted)


def _can_switch(db: Database, role: str) -> bool:
    row = db.fetch_one("SELECT pg_has_role(current_user, oid, 'MEMBER') AS member, "
                       "has_table_privilege(oid, %s, 'SELECT') AS reads_view, "
                       "has_table_privilege(oid, 'tracks', 'SELECT') AS reads_tracks "
                       "FROM pg_roles WHERE rolname = %s", (CHAT_VIEW, role))
    return bool(row and row["member"] and row["reads_view"] and not row["reads_tracks"])


class ChatQueryFailed(Exception):
    """PostgreSQL refused or stopped the query (a permission, the timeout, a column that does not exist)."""


def run_chat_query(db: Database, query: ValidatedQuery, *, role: str | None,
                   timeout_ms: int) -> list[dict[str, Any]]:
    """The rows of a validated query, run read-only within `timeout_ms` as `role` (None: as this user, when the
    role could not be set up — the first line of defence is then the only one)."""
    try:
        with db.rolled_back() as cur:  # even a set_config(…, false) the query makes is undone
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("SET LOCAL statement_timeout = %s", (int(timeout_ms),))
            # the parser read string literals this way: a server set otherwise must not read them differently
            cur.execute("SET LOCAL standard_conforming_strings = on")
            if role:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cur.execute("DEALLOCATE ALL")  # one left behind by a query that failed on this connection
            cur.execute(f"PREPARE {_STATEMENT} AS {query.sql}")  # validated text, no values in it
            if query.params:
                cur.execute(f"EXECUTE {_STATEMENT} ({', '.join(['%s'] * len(query.params))})", query.params)
            else:
                cur.execute(f"EXECUTE {_STATEMENT}")
            rows = [dict(r) for r in cur.fetchmany(query.limit)]
            cur.execute(f"DEALLOCATE {_STATEMENT}")
            return rows
    except psycopg2.errors.QueryCanceled:
        raise ChatQueryFailed(f"the query ran longer than {timeout_ms} ms and was stopped") from None
    except psycopg2.Error as exc:  # whatever PostgreSQL refused (permissions, types, limits): the query's problem
        raise ChatQueryFailed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


RESULT_COLUMNS = "item_id, title, artist, album, tempo_bpm, camelot, energy, musical_key, scale"
RESULT_FIELDS = tuple(RESULT_COLUMNS.split(", "))


class _Params:
    """The values of a query's $1, $2, …, in order: `add(value)` keeps it and gives its placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def fallback_query(intent: Any, *, limit: int, similar_ids: list[str] | None = None, strict: bool = True,
                   among_ids: list[str] | None = None) -> tuple[str, list[Any]]:
    """The chat's own query for an intent (discovery.chat_intent.Intent): named artists, albums, genres, tempo and
    key as filters when `strict`, tags, moods and energy as the score it is ordered by; parameters for every value.
    It goes through the same check and execution as an LLM's query. `among_ids` (fallback_candidates' best rows)
    limits it to those tracks."""
    params = _Params()
    param = params.add

    where: list[str] = []
    if similar_ids:  # none found: the request is ranked as if it named no song
        where.append(f"item_id IN ({', '.join(param(i) for i in similar_ids)})")
    if among_ids is not None:
        where.append(f"item_id IN ({', '.join(param(i) for i in among_ids)})" if among_ids else "false")
    if intent.artists:
        where.append(f"lower(artist) IN ({', '.join(param(a.lower()) for a in intent.artists)})")
    if intent.exclude_artists:
        where.append(f"lower(artist) NOT IN ({', '.join(param(a.lower()) for a in intent.exclude_artists)})")
    if strict:
        if intent.albums:
            where.append(f"lower(album) IN ({', '.join(param(a.lower()) for a in intent.albums)})")
        if intent.genres:
            where.append("(" + " OR ".join(f"{param(g)} = ANY(genres)" for g in intent.genres) + ")")
        if intent.camelot:
            where.append(f"camelot IN ({', '.join(param(c) for c in intent.camelot)})")
        if intent.key:
            where.append(f"musical_key = {param(intent.key)}")
        if intent.scale:
            where.append(f"scale = {param(intent.scale)}")
    where += _tempo_filters(intent, strict, param)
    score = _score_terms(intent, strict, param, lambda tag: f"(tags->>{param(tag)})::float")
    text = f"SELECT {RESULT_COLUMNS}, {' + '.join(score) if score else '0'} AS score FROM {CHAT_VIEW}"
    if where:
        text += " WHERE " + " AND ".join(where)
    return f"{text} ORDER BY {_order(bool(score))} LIMIT {int(limit)}", params.values


def _tempo_filters(intent: Any, strict: bool, param: Callable[[Any], str]) -> list[str]:
    if not strict:
        return []
    where = []
    if intent.min_bpm is not None:
        where.append(f"tempo_bpm >= {param(float(intent.min_bpm))}")
    if intent.max_bpm is not None:
        where.append(f"tempo_bpm <= {param(float(intent.max_bpm))}")
    return where


def _score_terms(intent: Any, strict: bool, param: Callable[[Any], str],
                 tag_value: Callable[[str], str]) -> list[str]:
    """The terms of the fallback's score, `tag_value(tag)` the SQL of one tag's probability."""
    # Tag probabilities are small (a clear jazz track ~0.3-0.6) next to moods and energy (0-1): the genre a request
    # names counts double, energy half, so "relaxing jazz" is jazz first.
    score = [f"2 * coalesce({tag_value(t)}, 0)" for t in intent.tags]
    score += [f"coalesce({m}, 0)" for m in intent.moods if m in _MOOD_COLUMNS]
    if intent.energy in ("high", "low"):
        # the energy level's own value (discovery.criteria.ENERGY_RULE): loud and fast first for high, the reverse
        # for low; a track of unknown energy scores as if it were neither
        pivot = param(ENERGY_RULE.pivot_bpm)
        level = energy_value_sql(energy="energy", bpm="tempo_bpm", pivot=pivot, scale=param(ENERGY_RULE.bpm_per_unit))
        score.append(f"0.5 * coalesce({level}, 0)" if intent.energy == "high" else
                     f"0.5 * (1 - coalesce({level}, 1))")
    if not strict and intent.min_bpm is not None:
        score.append(f"(CASE WHEN tempo_bpm >= {param(float(intent.min_bpm))} THEN 1 ELSE 0 END)")
    if not strict and intent.max_bpm is not None:
        score.append(f"(CASE WHEN tempo_bpm <= {param(float(intent.max_bpm))} THEN 1 ELSE 0 END)")
    return score


def score_tag_positions(db: Database) -> dict[str, int]:
    """tag → its element of chat_scores.tags (1-based; migration 0028)."""
    return {r["tag"]: int(r["position"]) for r in db.fetch_all("SELECT tag, position FROM chat_score_tags")}


def fallback_candidates(db: Database, intent: Any, *, strict: bool, count: int, tag_positions: Mapping[str, int],
                        timeout_ms: int) -> list[str] | None:
    """The first `count` item ids of the fallback's order from the narrow chat_scores table (migration 0028): by
    the same score, computed with the same parameter types, as fallback_query's, ties by item id; for an intent
    with no score (tempo only), `count` tracks in its range drawn at random. None when the intent filters on
    something that table does not hold (artists, albums, genres, keys)."""
    if intent.artists or intent.exclude_artists or any(t not in tag_positions for t in intent.tags) or strict and (
            intent.albums or intent.genres or intent.camelot or intent.key or intent.scale):
        return None
    params = _Params()
    param = params.add

    where = _tempo_filters(intent, strict, param)
    score = _score_terms(intent, strict, param, lambda tag: f"tags[{param(tag_positions[tag])}]")
    text = f"SELECT item_id, {' + '.join(score) if score else '0'} AS score FROM chat_scores"
    if where:
        text += " WHERE " + " AND ".join(where)
    # PREPAREd as the chat's queries are, so each parameter gets the type PostgreSQL infers there (a pivot tempo
    # next to a real column is real): the scores equal the chat view's bit for bit, and so does the order
    query = ValidatedQuery(sql=f"{text} ORDER BY {_order(bool(score))} LIMIT {int(count)}",
                           params=tuple(params.values), limit=count)
    return [str(r["item_id"]) for r in run_chat_query(db, query, role=None, timeout_ms=timeout_ms)]


def _order(scored: bool) -> str:
    # Ties go by item id, a total order both tables share: the first n rows of the narrow table are exactly the
    # first n of the view, however many tracks share the score at the cut.
    return "score DESC, item_id" if scored else "random()"


_MOOD_COLUMNS = frozenset({"danceable", "aggressive", "happy", "party", "relaxed", "sad"})


def library_names(db: Database, *, max_names: int = 50_000) -> dict[str, list[str]]:
    """The distinct artists, albums and genres of the analyzed library (what the fallback can recognise in
    a request), each at most `max_names`."""
    names: dict[str, list[str]] = {}
    for key, expression in (("artists", "artist"), ("albums", "album"), ("genres", "unnest(genres)")):
        rows = db.fetch_all(f"SELECT DISTINCT {expression} AS name FROM {CHAT_VIEW} LIMIT %s", (max_names,))
        names[key] = [r["name"] for r in rows if r["name"]]
    return names


def item_id_by_title(db: Database, title: str) -> str | None:
    """An analyzed track with this title (case ignored), the most recently analyzed first."""
    row = db.fetch_one(f"SELECT item_id FROM {CHAT_VIEW} WHERE lower(title) = lower(%s) ORDER BY item_id LIMIT 1",
                       (title,))
    return str(row["item_id"]) if row else None


def result_rows(db: Database, item_ids: list[str]) -> dict[str, dict[str, Any]]:
    """item_id → the fields a chat result shows, for those of `item_ids` that are analyzed."""
    if not item_ids:
        return {}
    rows = db.fetch_all(f"SELECT {RESULT_COLUMNS} FROM {CHAT_VIEW} WHERE item_id = ANY(%s)", (list(item_ids),))
    return {r["item_id"]: dict(r) for r in rows}


def titles_starting(db: Database, phrase: str, *, max_titles: int = 50) -> list[str]:
    """Titles of analyzed tracks that `phrase` starts with (case ignored; "yesterday and today" finds
    "Yesterday"), longest first."""
    rows = db.fetch_all(f"""SELECT DISTINCT title FROM {CHAT_VIEW}
                             WHERE title <> '' AND position(lower(title) IN lower(%s)) = 1
                             ORDER BY title LIMIT %s""", (phrase, max_titles))
    return sorted((r["title"] for r in rows), key=len, reverse=True)
