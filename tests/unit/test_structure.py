"""The layout rules of the house style, checked on the source itself: SQL only in db/, domain packages free of the
web and queue frameworks, and an import graph without cycles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO_ROOT

TOP_LEVEL = ("app.py", "ai.py", "config.py", "index_vectors.py", "launcher.py", "mediaserver.py", "version_groups.py",
             "voyager_manager.py")
PACKAGES = ("audio", "clustering", "db", "discovery", "infra", "mediaservers", "routes", "schedules", "services",
            "tasks")
DOMAIN = ("audio", "clustering", "discovery", "schedules")
# Statements sent to PostgreSQL: a cursor's execute or the pool's helpers, or SQL keywords in a string.
SQL_CALL = re.compile(r"\.(execute|executemany|fetch_one|fetch_all)\(")
SQL_TEXT = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b")
# The LLM prompt describes the query the chat wants in words and one example: text for a model, never run here.
PROMPT_TEXT = ("services/chat_prompt.py",)


def source_files() -> list[Path]:
    files = [REPO_ROOT / name for name in TOP_LEVEL]
    for package in PACKAGES:
        files += sorted((REPO_ROOT / package).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at top level or inside functions (a lazy import is still a dependency)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_sql_lives_in_db_only() -> None:
    offenders = []
    for path in source_files():
        if path.relative_to(REPO_ROOT).parts[0] == "db" or str(path.relative_to(REPO_ROOT)) in PROMPT_TEXT:
            continue
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            code = line.split("#", 1)[0]
            if SQL_CALL.search(code) and "pipe.execute()" not in code or SQL_TEXT.search(code):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_domain_packages_import_no_framework_or_infrastructure() -> None:
    forbidden = ("flask", "rq", "psycopg2", "redis", "werkzeug", "db", "routes", "tasks", "infra", "mediaserver",
                 "mediaservers", "voyager_manager", "app")
    offenders = []
    for package in DOMAIN:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                if name.split(".")[0] in forbidden:
                    offenders.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    assert offenders == []


def test_the_import_graph_of_our_modules_has_no_cycle() -> None:
    modules = {module_name(p): p for p in source_files()}
    graph = {name: sorted(dep for dep in _our_modules(imported_modules(path), modules) if dep != name)
             for name, path in modules.items()}
    cycles = []
    state: dict[str, str] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in graph[node]:
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def _our_modules(names: set[str], modules: dict[str, Path]) -> set[str]:
    """The names that are our modules (`from db import tracks` imports db.tracks; `db.tracks.x` is db.tracks)."""
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def test_every_media_server_is_in_the_one_registry_with_settings_that_exist() -> None:
    import dataclasses

    from config import Config
    from mediaserver import ADAPTERS
    from mediaservers.base import Capability

    choices = dataclasses.fields(Config)
    media_type = next(f for f in choices if f.name == "MEDIASERVER_TYPE")
    assert tuple(ADAPTERS) == media_type.metadata["choices"]
    settings = {f.name for f in choices}
    for kind, adapter in ADAPTERS.items():
        assert adapter.kind == kind and adapter.display_name
        assert adapter.settings and all(s.setting in settings for s in adapter.settings), kind
        assert len({s.field for s in adapter.settings}) == len(adapter.settings), kind
        assert all(isinstance(c, Capability) for c in adapter.capabilities), kind
        for method in ("from_config", "as_user", "list_albums", "album_tracks", "open_audio", "list_playlists",
                       "create_playlist", "replace_playlist_tracks", "delete_playlist", "list_libraries", "top_played",
                       "resolve_user"):
            assert callable(getattr(adapter, method, None)), (kind, method)
        if Capability.STICKERS in adapter.capabilities:
            assert callable(getattr(adapter, "write_stickers", None)), kind


def test_every_catalogued_task_is_a_job_function_of_its_type_with_parameters_that_parse() -> None:
    """The catalogue is the one list of main tasks: each entry names a job function decorated with its task type,
    parses empty parameters into its defaults, and is offered to schedules exactly when marked schedulable."""
    import importlib

    from config import Config
    from tasks.catalog import CATALOG, by_name, by_task_type, parse_params, schedulable

    config = Config.from_mapping({})
    assert len({k.name for k in CATALOG}) == len({k.task_type for k in CATALOG}) == len(CATALOG)
    for kind in CATALOG:
        module, _, function = kind.path.rpartition(".")
        job = getattr(importlib.import_module(module), function)
        assert job.task_type == kind.task_type, kind.name
        assert isinstance(parse_params(kind, {}, config, strict=True), dict), kind.name
        assert (kind.name in schedulable()) is kind.schedulable, kind.name
        assert by_name(kind.name) is by_task_type(kind.task_type) is kind
        assert kind.title and kind.busy and (kind.hint or not kind.schedulable), kind.name


def _blueprint_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO_ROOT / "routes").glob("*.py")) if "Blueprint(" in p.read_text()}


def test_no_blueprint_imports_another_blueprint() -> None:
    """What several blueprints need lives in a routes module that is no blueprint (routes/common.py), so each page's
    routes can change without reaching into another's."""
    blueprints = _blueprint_modules()
    assert len(blueprints) > 10  # the check reads the real tree
    offenders = [f"{name} imports {dep}" for name, path in blueprints.items()
                 for dep in _our_modules(imported_modules(path), blueprints) if dep != name]
    assert offenders == []


def test_the_web_process_use_cases_import_no_web_or_queue_framework() -> None:
    services = sorted((REPO_ROOT / "services").rglob("*.py"))
    offenders = [f"{path.relative_to(REPO_ROOT)} imports {name}" for path in services
                 for name in imported_modules(path) if name.split(".")[0] in ("flask", "werkzeug", "rq", "routes")]
    assert offenders == []
