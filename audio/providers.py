"""Which ONNX Runtime execution provider runs a model, and the visible fall back to the CPU (ONNX_PROVIDERS).

"auto" tries the accelerators this onnxruntime build has, best first (CUDA, ROCm, OpenVINO, CoreML), then the CPU;
a list ("cuda,cpu", or the providers' full names) tries those in that order, the CPU always last. A provider that
fails when its session is created, that onnxruntime quietly replaces by another, or that fails on the first batch
is left for the next one, and the reason is kept (`ProviderChoice`) for the log, /api/health and the Analysis page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
# best first; the CPU, always available, last
PREFERENCE: tuple[str, ...] = ("CUDAExecutionProvider", "ROCMExecutionProvider", "OpenVINOExecutionProvider",
                               "CoreMLExecutionProvider", CPU)
SHORT_NAMES: dict[str, str] = {"cuda": "CUDAExecutionProvider", "rocm": "ROCMExecutionProvider",
                               "openvino": "OpenVINOExecutionProvider", "coreml": "CoreMLExecutionProvider",
                               "cpu": CPU}


class ProviderSettingError(ValueError):
    """An ONNX_PROVIDERS value that names no known provider."""


def parse_setting(setting: str) -> list[str] | None:
    """The providers ONNX_PROVIDERS asks for, in its order (full names); None for "auto". Raises
    ProviderSettingError naming what it does not know."""
    words = [w.strip() for w in setting.split(",") if w.strip()]
    if not words or [w.lower() for w in words] == ["auto"]:
        return None
    names: list[str] = []
    for word in words:
        name = SHORT_NAMES.get(word.lower(), word if word.endswith("ExecutionProvider") else "")
        if not name:
            raise ProviderSettingError(
                f"ONNX_PROVIDERS names {word!r}: use auto, or a comma-separated list of {', '.join(SHORT_NAMES)} "
                "or onnxruntime provider names")
        if name not in names:
            names.append(name)
    return names


@dataclass
class ProviderChoice:
    """What a model's session runs on, and why not on the ones tried before it."""

    model: str
    provider: str = ""
    tried: list[str] = field(default_factory=list)
    # one line per provider passed over: not in this onnxruntime build, failed to start, or failed its first batch
    fallbacks: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        return bool(self.fallbacks)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "provider": self.provider, "tried": list(self.tried),
                "fallbacks": list(self.fallbacks)}


def candidates(setting: str, available: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the providers to try, in order; why each asked one that this build lacks is passed over)."""
    asked = parse_setting(setting)
    if asked is None:
        return [p for p in PREFERENCE if p in available or p == CPU], []
    missing = [f"{p}: not in this onnxruntime build (it has {', '.join(available) or 'none'})"
               for p in asked if p not in available and p != CPU]
    order = [p for p in asked if p in available or p == CPU]
    return ([*order, CPU] if CPU not in order else order), missing


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def open_session(model: str, create: Callable[[list[str]], Any], *, setting: str,
                 available: Sequence[str]) -> tuple[Any, ProviderChoice]:
    """The first session `create([provider])` makes that really runs on that provider, trying `candidates` in
    order, and the choice made. A provider that raises, or that onnxruntime replaces by another (its session's
    first provider is not the one asked for), is recorded and passed over. Raises the CPU's own error if even
    the CPU session cannot be created (a damaged model file, say)."""
    order, missing = candidates(setting, available)
    choice = ProviderChoice(model=model, fallbacks=list(missing))
    for provider in order:
        choice.tried.append(provider)
        try:
            session = create([provider])
        except Exception as exc:
            if provider == CPU:
                raise
            choice.fallbacks.append(f"{provider}: failed to start ({_first_line(exc)})")
            continue
        running = list(session.get_providers())
        if running and running[0] != provider:  # the next accelerator may start; the CPU comes last anyway
            choice.fallbacks.append(f"{provider}: onnxruntime ran {running[0]} instead (the worker log says why)")
            continue
        choice.provider = provider
        return session, choice
    raise RuntimeError("no ONNX Runtime provider to try")  # unreachable: the CPU is always a candidate


def available_providers() -> list[str]:
    """The providers this onnxruntime build has."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


class GuardedSession:
    """A model's onnxruntime session on the provider `open_session` chose, that moves to the CPU if its first batch
    fails there (a GPU out of memory, an operator the provider cannot run) and runs on the CPU: the reason is added
    to `choice`. A first batch that fails on the CPU too is the batch's fault: raised, the provider kept. Later
    failures are the caller's. One per worker process, used by one thread."""

    def __init__(self, model: str, create: Callable[[list[str]], Any], *, setting: str,
                 available: Sequence[str]) -> None:
        self._create = create
        self.session, self.choice = open_session(model, create, setting=setting, available=available)
        self._proven = self.choice.provider == CPU
        if self.choice.fell_back:
            log.warning("%s runs on %s; passed over: %s", model, self.choice.provider, "; ".join(self.choice.fallbacks))
        else:
            log.info("%s runs on %s", model, self.choice.provider)

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def get_outputs(self) -> Any:
        return self.session.get_outputs()

    def run(self, outputs: Sequence[str], feeds: dict[str, Any]) -> Any:
        if self._proven:
            return self.session.run(outputs, feeds)
        try:
            result = self.session.run(outputs, feeds)
        except Exception as exc:
            cpu = self._create([CPU])
            result = cpu.run(outputs, feeds)  # fails too: the batch's fault, not the provider's (raised as it is)
            failed = self.choice.provider
            self.choice.fallbacks.append(f"{failed}: failed on its first batch ({_first_line(exc)})")
            self.session, self.choice.provider = cpu, CPU
            self.choice.tried.append(CPU)
            log.warning("%s moved to %s: %s failed on its first batch: %s", self.choice.model, CPU, failed,
                        _first_line(exc))
        self._proven = True
        return result
