"""Choosing the ONNX Runtime provider of a model (ONNX_PROVIDERS) and falling back to the CPU visibly: the order
tried, providers this build lacks, one that fails to start, one that onnxruntime quietly replaces, one that fails
its first batch. The accelerators cannot run on this CPU-only machine, so their sessions are stand-ins that behave
as onnxruntime's do when a provider fails; the CPU sessions and the musicnn model are the real ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from audio.musicnn import MusicnnModel
from audio.providers import (
    CPU,
    GuardedSession,
    ProviderSettingError,
    available_providers,
    candidates,
    open_session,
    parse_setting,
)
from config import PROJECT_ROOT, Config, ConfigError
from tasks.analysis_summary import AnalysisSummary

CUDA, OPENVINO, ROCM = "CUDAExecutionProvider", "OpenVINOExecutionProvider", "ROCMExecutionProvider"
MODEL = PROJECT_ROOT / "models" / "msd_musicnn.onnx"


class Session:
    """A session as onnxruntime hands it back: the providers it runs on, and a run that may fail."""

    def __init__(self, providers: list[str], *, fail_runs: int = 0) -> None:
        self.providers = providers
        self.fail_runs = fail_runs
        self.runs = 0

    def get_providers(self) -> list[str]:
        return self.providers

    def run(self, outputs: Any, feeds: Any) -> list[str]:
        self.runs += 1
        if self.runs <= self.fail_runs:
            raise RuntimeError("CUDA failure 2: out of memory\n(a long trace)")
        return [self.providers[0]]


def test_the_setting_names_providers_by_short_or_full_name_and_refuses_others():
    assert parse_setting("auto") is None and parse_setting("") is None and parse_setting(" AUTO ") is None
    assert parse_setting("cuda, CPU") == [CUDA, CPU]
    assert parse_setting("TensorrtExecutionProvider,cuda,cuda") == ["TensorrtExecutionProvider", CUDA]
    with pytest.raises(ProviderSettingError, match="'tpu'"):
        parse_setting("cuda,tpu")
    with pytest.raises(ConfigError, match="ONNX_PROVIDERS names 'gpu'"):
        Config.from_mapping({"ONNX_PROVIDERS": "gpu"})
    assert Config.from_mapping({"ONNX_PROVIDERS": "openvino,cpu"}).ONNX_PROVIDERS == "openvino,cpu"


def test_auto_tries_the_accelerators_of_this_build_best_first_and_a_list_keeps_its_order():
    assert candidates("auto", [CPU, OPENVINO, CUDA]) == ([CUDA, OPENVINO, CPU], [])
    assert candidates("auto", []) == ([CPU], [])
    order, missing = candidates("rocm,openvino", [OPENVINO, CPU])
    assert order == [OPENVINO, CPU]  # the CPU always last
    assert missing == [f"{ROCM}: not in this onnxruntime build (it has {OPENVINO}, {CPU})"]
    assert candidates("cpu,cuda", [CUDA, CPU])[0] == [CPU, CUDA]  # asked for: the CPU first


def test_a_provider_that_fails_to_start_or_is_quietly_replaced_is_passed_over_with_its_reason():
    asked: list[list[str]] = []

    def create(providers: list[str]) -> Session:
        asked.append(providers)
        if providers == [CUDA]:
            raise RuntimeError("libcudnn.so.8: cannot open shared object file\nmore")
        if providers == [OPENVINO]:
            return Session([CPU])  # onnxruntime's own fall back when a provider cannot take the graph
        return Session(providers)

    session, choice = open_session("musicnn", create, setting="rocm,cuda,openvino", available=[CUDA, OPENVINO, CPU])
    assert asked == [[CUDA], [OPENVINO], [CPU]] and session.get_providers() == [CPU]
    assert choice.provider == CPU and choice.tried == [CUDA, OPENVINO, CPU] and choice.fell_back
    assert choice.fallbacks == [
        f"{ROCM}: not in this onnxruntime build (it has {CUDA}, {OPENVINO}, {CPU})",
        f"{CUDA}: failed to start (RuntimeError: libcudnn.so.8: cannot open shared object file)",
        f"{OPENVINO}: onnxruntime ran {CPU} instead (the worker log says why)"]

    session, choice = open_session("musicnn", create, setting="auto", available=[ROCM, CPU])
    assert choice.provider == ROCM and not choice.fell_back and choice.as_dict()["fallbacks"] == []

    def quiet_cuda(providers: list[str]) -> Session:  # CUDA quietly replaced; the next accelerator still tried
        return Session([CPU] if providers == [CUDA] else providers)

    session, choice = open_session("musicnn", quiet_cuda, setting="auto", available=[CUDA, OPENVINO, CPU])
    assert choice.provider == OPENVINO and choice.tried == [CUDA, OPENVINO]
    assert choice.fallbacks == [f"{CUDA}: onnxruntime ran {CPU} instead (the worker log says why)"]


def test_the_cpu_failing_to_start_is_the_callers_error():
    def create(providers: list[str]) -> Session:
        raise ValueError("not an ONNX model")

    with pytest.raises(ValueError, match="not an ONNX model"):
        open_session("musicnn", create, setting="auto", available=[CUDA, CPU])


def test_a_provider_that_fails_its_first_batch_moves_the_model_to_the_cpu_and_later_failures_are_raised():
    made: list[Session] = []

    def create(providers: list[str]) -> Session:
        made.append(Session(providers, fail_runs=1 if providers == [CUDA] else 0))
        return made[-1]

    guarded = GuardedSession("clap", create, setting="auto", available=[CUDA, CPU])
    assert guarded.choice.provider == CUDA
    assert guarded.run(["out"], {}) == [CPU]  # the batch was run again, on the CPU
    assert guarded.choice.provider == CPU and guarded.choice.tried == [CUDA, CPU]
    assert guarded.choice.fallbacks == [f"{CUDA}: failed on its first batch (RuntimeError: CUDA failure 2: out of "
                                        "memory)"]
    made[-1].fail_runs = 5  # proven: a later failure is the batch's, not the provider's
    with pytest.raises(RuntimeError):
        guarded.run(["out"], {})
    assert len(made) == 2

    steady = GuardedSession("clap", lambda p: Session(p), setting="cuda", available=[CUDA, CPU])
    assert steady.run(["out"], {}) == [CUDA]
    steady.session.fail_runs = 5  # after a first batch that ran: raised, and the model stays where it is
    with pytest.raises(RuntimeError):
        steady.run(["out"], {})
    assert steady.choice.provider == CUDA and not steady.choice.fell_back
    cpu_only = GuardedSession("clap", lambda p: Session(p, fail_runs=1), setting="cpu", available=[CUDA, CPU])
    with pytest.raises(RuntimeError):  # the CPU has nothing to fall back to
        cpu_only.run(["out"], {})
    bad_batch = GuardedSession("clap", lambda p: Session(p, fail_runs=1), setting="cuda", available=[CUDA, CPU])
    with pytest.raises(RuntimeError):  # it fails on the CPU too: the batch's fault, the provider is kept
        bad_batch.run(["out"], {})
    assert bad_batch.choice.provider == CUDA and not bad_batch.choice.fell_back
    assert bad_batch.run(["out"], {}) == [CUDA]


def test_the_real_musicnn_asked_for_cuda_on_this_build_runs_on_the_cpu_and_says_why():
    reference = np.load(PROJECT_ROOT / "models" / "msd_musicnn_reference.npz")
    assert CUDA not in available_providers()
    model = MusicnnModel(MODEL, providers="cuda,cpu")
    assert model.provider.provider == CPU and model.provider.fallbacks[0].startswith(
        f"{CUDA}: not in this onnxruntime build")
    # told the build has CUDA, onnxruntime itself refuses it or runs the CPU instead: either way, seen
    pretended = MusicnnModel(MODEL, providers="auto", available=[CUDA, CPU])
    assert pretended.provider.provider == CPU and pretended.provider.tried[0] == CUDA
    assert pretended.provider.fallbacks and pretended.provider.fallbacks[0].startswith(CUDA)
    for m in (model, pretended):
        np.testing.assert_allclose(m.predict(reference["input"]).embeddings, reference["embedding"], atol=1e-4)


def test_the_run_summary_lists_what_each_model_ran_on_and_every_fallback_once():
    summary = AnalysisSummary(albums_total=3, top_n_moods=5, clap_enabled=False)
    gpu = {"model": "musicnn", "provider": CUDA, "tried": [CUDA], "fallbacks": []}
    cpu = {"model": "musicnn", "provider": CPU, "tried": [CUDA, CPU],
           "fallbacks": [f"{CUDA}: failed on its first batch (RuntimeError: out of memory)"]}
    for providers in ([gpu], [cpu], [cpu], []):
        summary.add_album({"analyzed": 1, "providers": providers})
    assert summary.providers == {"musicnn": [CUDA, CPU]}
    assert summary.provider_fallbacks == [f"musicnn: {CUDA}: failed on its first batch (RuntimeError: out of memory)"]
    assert summary.as_result()["providers"] == {"musicnn": [CUDA, CPU]}
