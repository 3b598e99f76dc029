"""Where an analysis worker's resident memory goes (issue 31's flat-memory target: an idle worker ≤ 150 MB), printed
as markdown.

    .venv/bin/python bench/worker_memory.py

Each step runs in a fresh process (spawned), so no step inherits another's memory: the interpreter with what a
worker's parent needs to take jobs (RQ, Redis, psycopg2, the configuration), then with the worker's imports as they
are, the musicnn session, one 3-minute and one 20-minute signal analysed, glibc's free memory given back
(malloc_trim), and the session dropped. Resident memory (RSS) after each step, and the peak (ru_maxrss).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _lean(out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    sys.path.insert(0, str(ROOT))
    import psycopg2  # noqa: F401
    import redis  # noqa: F401
    import rq  # noqa: F401

    import config  # noqa: F401
    import tasks.queues  # noqa: F401

    out.put([("a worker's parent that only takes jobs (RQ, Redis, psycopg2, config, queues)", _rss_mb())])


def _worker(out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    sys.path.insert(0, str(ROOT))
    import ctypes
    import gc

    import numpy as np

    rows = []
    import tasks.analysis  # noqa: F401
    import tasks.worker  # noqa: F401

    rows.append(("the worker's imports as they are (tasks.worker, tasks.analysis)", _rss_mb()))
    from audio.analyze import analyze_samples
    from audio.musicnn import MusicnnModel

    model = MusicnnModel(ROOT / "models" / "msd_musicnn.onnx")
    rows.append(("+ the musicnn session", _rss_mb()))
    rng = np.random.default_rng(1)
    for minutes in (3, 20):
        samples = (rng.standard_normal(16000 * 60 * minutes) * 0.1).astype(np.float32)
        analyze_samples(samples, model=model)
        del samples
        rows.append((f"+ a {minutes}-minute signal analysed (peak so far {_peak_mb():.0f} MB)", _rss_mb()))
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    rows.append(("+ free memory given back (gc, malloc_trim)", _rss_mb()))
    del model
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    rows.append(("+ the musicnn session dropped", _rss_mb()))
    out.put(rows)


def main() -> int:
    context = multiprocessing.get_context("spawn")
    rows = []
    for target in (_lean, _worker):
        queue = context.Queue()
        process = context.Process(target=target, args=(queue,))
        process.start()
        rows.extend(queue.get(timeout=900))
        process.join()
    from bench.stack import print_figures  # here: a spawned step re-imports this module, and must stay lean

    print_figures("", [(name, f"{mb:.0f}") for name, mb in rows], load=False,
                  header=("step (each row a fresh process or the one above it)", "resident MB"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
