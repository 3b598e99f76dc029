"""How tasks are named to the queue layer: a decorated task function, or a reference by import path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class TaskFunction(Protocol):
    task_type: str
    __name__: str
    __module__: str

    def __call__(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class TaskRef:
    """A task named by its import path, so the web process can enqueue it without importing its module (and that
    module's audio stack: scipy alone is ~70 MB of resident memory)."""

    path: str
    task_type: str
