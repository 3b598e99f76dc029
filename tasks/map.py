"""The music map's projection job: services.map.refresh_projection with progress and cancellation."""

from __future__ import annotations

from typing import Any

from audio.musicnn import MODEL_NAME
from services.map import refresh_projection
from tasks.catalog import MAP
from tasks.progress import TaskContext, task


@task(MAP.task_type)
def run_map_projection_task(ctx: TaskContext, full: bool = False, reason: str = "") -> dict[str, Any]:
    ctx.report("Full build of the music map" if full else "Updating the music map", phase="map", progress=0)

    def progress(message: str, share: float) -> None:
        ctx.check_cancelled()
        ctx.report(message, progress=95.0 * share)

    result = refresh_projection(ctx.db, ctx.redis, config=ctx.config, model=MODEL_NAME, full=full,
                                progress=progress)
    summary = {
        "full": f"Mapped {result['tracks']} tracks with {str(result['method']).upper()}",
        "incremental": f"Placed {result['placed']} new tracks, removed {result['removed']}; "
                       f"{result['tracks']} on the map",
        "unchanged": f"The map is up to date ({result['tracks']} tracks)",
        "empty": "Nothing analyzed yet: no map",
    }[result["mode"]]
    if result.get("fallback_reason"):
        summary += f" ({result['fallback_reason']})"
    ctx.report(summary, progress=100)
    return {**result, "reason": reason}

