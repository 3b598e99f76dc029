"""The second line of defence of the instant-playlist chat: a validated query (db/chat_sql.py) runs as a role that
may read only the chat_tracks view, in a READ ONLY transaction with a statement timeout, its parameters bound to a
prepared statement (values can never become SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql

from db.chat_sql import CHAT_VIEW, ValidatedQuery
from db.pool import Database

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
        with db.transaction() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("SET LOCAL statement_timeout = %s", (int(timeout_ms),))
            if role:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cur.execute("DEALLOCATE ALL")  # one left behind by a query that failed on this connection
            cur.execute(f"PREPARE {_STATEMENT} AS {query.sql}")  # validated text, no values in it
            if query.params:
                cur.execute(f"EXECUTE {_STATEMENT} ({', '.join(['%s'] * len(query.params))})", query.params)
            else:
                cur.execute(f"EXECUTE {_STATEMENT}")
            rows = [dict(r) for r in cur.fetchall()]
            cur.execute(f"DEALLOCATE {_STATEMENT}")
            return rows
    except psycopg2.errors.QueryCanceled:
        raise ChatQueryFailed(f"the query ran longer than {timeout_ms} ms and was stopped") from None
    except (psycopg2.ProgrammingError, psycopg2.DataError, psycopg2.InternalError) as exc:
        raise ChatQueryFailed(str(exc).splitlines()[0]) from None
