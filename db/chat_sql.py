"""The first line of defence of the instant-playlist chat: an LLM's SQL is accepted only when PostgreSQL's own parser
(pglast, libpg_query: the server's grammar itself, so no dialect gap between what is checked and what runs) reads it
as exactly one plain SELECT over the chat view, built only from allow-listed node types, functions, operators and
types, with a LIMIT no larger than the cap; parameters are `$1`, `$2`, … and are bound by the server, never pasted
into the text. The second line (a role that can read only the view, a read-only transaction with a statement
timeout) is the executor's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

__all__ = ["CHAT_VIEW", "ChatQueryRejected", "ValidatedQuery", "validate_chat_query", "with_limit"]

CHAT_VIEW = "chat_tracks"
# The view's columns (db/migrations/0010_chat_view.sql; a test compares them) with their types and what the LLM is
# told of them: a name that is none of these nor an output column of the query is refused, so `alias.json_agg`
# (PostgreSQL's attribute notation for json_agg(alias)) cannot call a function past the allow-list.
CHAT_VIEW_COLUMNS = (
    ("item_id", "text", "the track's id (always select it)"),
    ("title", "text", ""), ("artist", "text", ""), ("album", "text", ""), ("album_artist", "text", ""),
    ("year", "integer", "release year, may be NULL"), ("duration_seconds", "double precision", ""),
    ("genres", "text[]", "the media server's genres, e.g. '{Rock,Jazz}'; test with 'Jazz' = ANY(genres)"),
    ("tempo_bpm", "real", "beats per minute, NULL when no steady beat"),
    ("musical_key", "text", "C, C#, D, ... B"), ("scale", "text", "'major' or 'minor'"),
    ("camelot", "text", "Camelot key code, e.g. '8A'"), ("energy", "real", "0 (calm) to 1 (intense)"),
    ("loudness", "real", "integrated loudness in LUFS, e.g. -14"),
    ("danceable", "real", "mood 0-1"), ("aggressive", "real", "mood 0-1"), ("happy", "real", "mood 0-1"),
    ("party", "real", "mood 0-1"), ("relaxed", "real", "mood 0-1"), ("sad", "real", "mood 0-1"),
    ("tags", "jsonb", "tag probabilities 0-1, read one with (tags->>'rock')::float"),
)

CHAT_COLUMNS = frozenset(name for name, _, _ in CHAT_VIEW_COLUMNS)

# What a query for songs needs: comparisons, arithmetic, text matching, JSON access into the tag object.
ALLOWED_OPERATORS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "~~", "!~~", "~~*",
                               "!~~*", "->", "->>", "?", "||"})
ALLOWED_FUNCTIONS = frozenset({
    "abs", "round", "floor", "ceil", "ceiling", "sqrt", "power", "greatest", "least", "random", "lower", "upper",
    "length", "char_length", "trim", "btrim", "ltrim", "rtrim", "substr", "substring", "position", "replace",
    "concat", "split_part", "left", "right", "starts_with", "unaccent", "count", "avg", "min", "max", "sum",
    "jsonb_extract_path_text", "coalesce", "nullif", "array_position", "cardinality"})
ALLOWED_TYPES = frozenset({"int2", "int4", "int8", "integer", "int", "smallint", "bigint", "float4", "float8", "real",
                           "double precision", "numeric", "decimal", "text", "varchar", "bool", "boolean"})
_EXPRESSION_KINDS = frozenset({"AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_IN", "AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_BETWEEN",
                               "AEXPR_NOT_BETWEEN", "AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT", "AEXPR_NULLIF"})
_NODES = frozenset({
    "RawStmt", "SelectStmt", "ResTarget", "ColumnRef", "String", "Integer", "Float", "Boolean", "A_Const", "A_Expr",
    "BoolExpr", "FuncCall", "SortBy", "RangeVar", "Alias", "TypeCast", "TypeName", "NullTest", "BooleanTest",
    "CaseExpr", "CaseWhen", "CoalesceExpr", "MinMaxExpr", "A_Star", "ParamRef", "SubLink", "RangeSubselect",
    "A_ArrayExpr"})
# How the statements people worry about show up, for a message a person can read.
_NAMED = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
          "DropStmt": "DROP", "CopyStmt": "COPY", "CreateStmt": "CREATE", "CreateTableAsStmt": "CREATE TABLE AS",
          "TruncateStmt": "TRUNCATE", "VariableSetStmt": "SET", "TransactionStmt": "a transaction command",
          "LockingClause": "FOR UPDATE/SHARE", "IntoClause": "SELECT INTO", "RangeFunction": "a function in FROM",
          "WindowDef": "a window function", "A_Indirection": "subscripts",
          # WITH is refused as a whole: besides writable CTEs, a CTE's own body reads the real table of its name.
          "WithClause": "WITH (common table expressions)", "DoStmt": "DO", "CallStmt": "CALL"}
_SCALARS = (str, int, float, bool, type(None))


class ChatQueryRejected(ValueError):
    """The query is not one the chat may run; the message says why (shown to the user, logged)."""


@dataclass(frozen=True)
class ValidatedQuery:
    sql: str
    params: tuple[Any, ...]
    limit: int


def _children(node: ast.Node) -> Iterator[ast.Node]:
    for name in node:
        value = getattr(node, name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if isinstance(item, ast.Node):
                yield item
            elif isinstance(item, (tuple, list)):  # lists of lists (VALUES rows, IN lists in some forms)
                yield from (i for i in item if isinstance(i, ast.Node))


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    yield node
    for child in _children(node):
        yield from _walk(child)


def _names(items: Sequence[Any] | None) -> list[str]:
    return [(i.sval or "").lower() for i in items or () if isinstance(i, ast.String)]


def _operator(names: list[str], where: str) -> None:
    if len(names) != 1 or names[0] not in ALLOWED_OPERATORS:
        raise ChatQueryRejected(f"it uses the operator {'.'.join(names)} {where}, which chat queries may not")


def _check(node: ast.Node, params: set[int], outputs: set[str]) -> None:
    kind = type(node).__name__
    if kind not in _NODES:
        raise ChatQueryRejected(f"it uses {_NAMED.get(kind, kind)}, which chat queries may not")
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            raise ChatQueryRejected("it uses SELECT INTO, which chat queries may not")
        if node.lockingClause:
            raise ChatQueryRejected("it uses FOR UPDATE/SHARE, which chat queries may not")
        if node.withClause is not None:
            raise ChatQueryRejected("it uses WITH (common table expressions), which chat queries may not")
        if node.valuesLists:
            raise ChatQueryRejected("it uses VALUES, which chat queries may not")
        option = getattr(node.limitOption, "name", str(node.limitOption))
        if option == "LIMIT_OPTION_WITH_TIES":
            raise ChatQueryRejected("it uses FETCH … WITH TIES, which is no limit")
    elif isinstance(node, ast.RangeVar):
        if node.schemaname or node.catalogname or (node.relname or "").lower() != CHAT_VIEW:
            shown = ".".join(p for p in (node.catalogname, node.schemaname, node.relname) if p)
            raise ChatQueryRejected(f"it reads {shown}; chat queries may read only {CHAT_VIEW}")
    elif isinstance(node, ast.FuncCall):
        names = _names(node.funcname)
        if node.over is not None:
            raise ChatQueryRejected("it uses a window function, which chat queries may not")
        if len(names) != 1 or names[0] not in ALLOWED_FUNCTIONS:
            raise ChatQueryRejected(f"it calls {'.'.join(names)}(), which chat queries may not")
    elif isinstance(node, ast.A_Expr):
        kind_name = getattr(node.kind, "name", str(node.kind))
        operator = ".".join(_names(node.name))
        if kind_name not in _EXPRESSION_KINDS or (kind_name in ("AEXPR_OP", "AEXPR_OP_ANY")
                                                  and operator not in ALLOWED_OPERATORS):
            raise ChatQueryRejected(f"it uses the operator {operator or kind_name}, which chat queries may not")
    elif isinstance(node, ast.TypeName):
        names = _names(node.names)
        if not names or names[-1] not in ALLOWED_TYPES or (len(names) == 2 and names[0] != "pg_catalog") \
                or len(names) > 2:
            raise ChatQueryRejected(f"it casts to {'.'.join(names)}, which chat queries may not")
    elif isinstance(node, ast.SubLink):
        if node.subselect is not None and not isinstance(node.subselect, ast.SelectStmt):
            raise ChatQueryRejected("its subquery is not a SELECT")
        if node.operName:
            _operator(_names(node.operName), "before a subquery")
    elif isinstance(node, ast.SortBy):
        if node.useOp:
            raise ChatQueryRejected("it sorts with ORDER BY … USING, which chat queries may not")
    elif isinstance(node, ast.ColumnRef):
        fields = node.fields or ()
        if isinstance(fields[-1], ast.A_Star):
            if len(fields) > 2:
                raise ChatQueryRejected("it names a column in a way chat queries may not")
        else:
            names = _names(fields)
            if len(names) != len(fields) or len(names) > 2 or (
                    names[-1] not in CHAT_COLUMNS and (len(names) == 2 or names[-1] not in outputs)):
                raise ChatQueryRejected(f"it names {'.'.join(names)}, which is not a column of {CHAT_VIEW}")
    elif isinstance(node, ast.A_Const):
        if isinstance(node.val, ast.String) and "\\" in (node.val.sval or ""):
            raise ChatQueryRejected("it has a backslash in a text value")
    elif isinstance(node, ast.ParamRef):
        params.add(int(node.number or 0))


def _limit(stmt: ast.SelectStmt, max_limit: int) -> int:
    count = stmt.limitCount
    if count is None or (isinstance(count, ast.A_Const) and count.isnull):  # none, or LIMIT ALL / LIMIT NULL
        raise ChatQueryRejected(f"it has no LIMIT (at most {max_limit})")
    value = getattr(count, "val", None) if isinstance(count, ast.A_Const) else None
    if not isinstance(value, ast.Integer):
        raise ChatQueryRejected("its LIMIT is not a whole number")
    limit = int(value.ival or 0)  # pglast leaves a zero out
    if not 1 <= limit <= max_limit:
        raise ChatQueryRejected(f"its LIMIT {limit} is not between 1 and {max_limit}")
    return limit


def validate_chat_query(sql: object, params: object = None, *, max_limit: int) -> ValidatedQuery:
    """The query and its parameters when the chat may run them; raises ChatQueryRejected saying why not."""
    try:
        return _validated(sql, params, max_limit=max_limit)
    except RecursionError:  # an LLM answer of thousands of nested parentheses: refused, not a crash
        raise ChatQueryRejected("it is nested too deeply") from None


def _validated(sql: object, params: object, *, max_limit: int) -> ValidatedQuery:
    if not isinstance(sql, str) or not sql.strip():
        raise ChatQueryRejected("there is no query")
    if len(sql) > 10_000:
        raise ChatQueryRejected("the query is longer than 10,000 characters")
    if params is None:
        params = []
    if isinstance(params, dict):
        raise ChatQueryRejected("params must be a list for $1, $2, …, not named")
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, _SCALARS) for p in params):
        raise ChatQueryRejected("params must be a list of numbers, text, booleans or nulls")
    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        raise ChatQueryRejected(f"it is not valid SQL: {exc}") from None
    if len(statements) != 1:
        raise ChatQueryRejected(f"it holds {len(statements)} statements; exactly one SELECT is allowed")
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        kind = type(stmt).__name__
        raise ChatQueryRejected(f"it is {_NAMED.get(kind, kind)}, not a SELECT")
    used: set[int] = set()
    outputs = {n.name.lower() for n in _walk(stmt) if isinstance(n, ast.ResTarget) and n.name}
    nodes = list(_walk(stmt))
    # the clearest reasons first: the statement's own clauses (INTO, WITH, ...), then the tables it reads
    for node in sorted(nodes, key=lambda n: 0 if isinstance(n, ast.SelectStmt) else 1 if isinstance(n, ast.RangeVar)
                       else 2):
        _check(node, used, outputs)
    limit = _limit(stmt, max_limit)
    if used != set(range(1, len(used) + 1)) or len(used) != len(params):
        raise ChatQueryRejected(f"it uses the parameters {sorted(used) or 'none'} but {len(params)} were given")
    return ValidatedQuery(sql=sql.strip().rstrip(";").rstrip(), params=tuple(params), limit=limit)


def with_limit(query: ValidatedQuery, limit: int) -> ValidatedQuery:
    """The validated query with LIMIT `limit` instead (the chat asks for more rows when the blocklists leave some
    out): the checked tree with its limit replaced, printed by pglast and checked again like any query."""
    stmt = parse_sql(query.sql)[0].stmt
    assert isinstance(stmt, ast.SelectStmt)  # as validate_chat_query found it
    stmt.limitCount = ast.A_Const(val=ast.Integer(ival=int(limit)))
    return validate_chat_query(RawStream()(stmt), list(query.params), max_limit=int(limit))
