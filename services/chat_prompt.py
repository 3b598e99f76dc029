"""The instant-playlist chat's conversation with an LLM: the prompt (the chat view's columns as db/chat_sql describes
them, the tag and mood vocabulary, the rules a query must follow) and the reading of its answer (`{message, query,
params}` as JSON, also inside a code fence or after some words)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from db.chat_sql import CHAT_VIEW_COLUMNS

__all__ = ["ChatAnswerInvalid", "LlmPlan", "chat_prompt", "parse_llm_answer"]


class ChatAnswerInvalid(ValueError):
    """The LLM's answer is not the JSON asked for; the message says what is wrong."""


@dataclass(frozen=True)
class LlmPlan:
    message: str
    query: str
    params: list[Any]


def chat_prompt(user_input: str, *, tags: Sequence[str], max_limit: int, default_limit: int) -> str:
    """The whole prompt for one request."""
    columns = "\n".join(f"- {name} {kind}" + (f": {note}" if note else "") for name, kind, note in CHAT_VIEW_COLUMNS)
    return f"""You build music playlists from a user's request by writing one PostgreSQL query.

The only table you may read is the view chat_tracks, one row per song in the user's library:
{columns}

Tag names in tags: {", ".join(tags)}.

Rules for the query:
- exactly one SELECT on chat_tracks; no other table, no WITH, no window functions, no INSERT/UPDATE/DELETE;
- select item_id, title, artist, album, tempo_bpm, camelot, energy;
- put every value taken from the request in params and write it as $1, $2, ... in the query;
- end with LIMIT and a number: {default_limit} unless the user asks for a count, never more than {max_limit};
- prefer ORDER BY a score (for example (tags->>'jazz')::float + relaxed DESC) over strict filters, so the
  playlist is not empty.

Answer with JSON only, no other text:
{{"message": "one friendly sentence about the playlist", "query": "SELECT ...", "params": [...]}}

The user's request: {json.dumps(user_input, ensure_ascii=False)}
"""


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def _first_object(text: str) -> Any:
    """The first JSON object in the text (the whole text, a fenced block, or from its first "{")."""
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:])
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            value, _ = decoder.raw_decode(candidate)
        except ValueError:
            continue
        except RecursionError:  # nested thousands deep: not an answer the chat can use
            raise ChatAnswerInvalid("the answer's JSON is nested too deeply") from None
        if isinstance(value, dict):
            return value
    raise ChatAnswerInvalid("the answer is not JSON")


def parse_llm_answer(text: str) -> LlmPlan:
    data = _first_object(text or "")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ChatAnswerInvalid("the answer's JSON has no query")
    params = data.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ChatAnswerInvalid("the answer's params are not a list")
    message = data.get("message")
    return LlmPlan(message=message.strip()[:500] if isinstance(message, str) else "", query=query, params=params)
