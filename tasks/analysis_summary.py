"""What an analysis run has done so far, as one typed record: folded from its album jobs' results, reported while it
runs and returned (as a dict with the reference's field names) as the run's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_REPORTED_FAILURES = 100  # per list; the counts stay exact


@dataclass
class AnalysisSummary:
    albums_total: int
    top_n_moods: int
    clap_enabled: bool
    albums_launched: int = 0
    albums_done: int = 0
    albums_unchanged: int = 0
    albums_failed: int = 0
    tracks_analyzed: int = 0
    tracks_skipped: int = 0
    tracks_failed: int = 0
    tracks_imported: int = 0  # of tracks_analyzed: results taken from an imported bundle, the model not run
    parts_updated: dict[str, int] = field(default_factory=dict)  # part → tracks whose older part was computed again
    patch_stride: int = 1  # > 1: a fast run (every n-th patch through the model)
    tracks_fast: int = 0  # of tracks_analyzed: analysed fast
    audio_seconds: float = 0.0
    index_size: int | None = None  # None until the index was rebuilt in this run
    clap_embedded: int = 0
    clap_failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    album_errors: list[dict[str, Any]] = field(default_factory=list)
    clap_failures: list[dict[str, Any]] = field(default_factory=list)
    elapsed_seconds: float | None = None
    follow_ups: dict[str, str | None] = field(default_factory=dict)  # e.g. map_task_id → the job that followed
    # model → the ONNX Runtime providers its sessions ran on (one per worker host that may differ), and why any
    # worker passed a provider over (audio.providers)
    providers: dict[str, list[str]] = field(default_factory=dict)
    provider_fallbacks: list[str] = field(default_factory=list)

    def add_album_error(self, album: str, status: str, reason: str | None) -> None:
        self.albums_done += 1
        self.albums_failed += 1
        self.album_errors.append({"album": album, "status": status, "reason": reason})

    def add_album(self, result: dict[str, Any]) -> int:
        """Fold in a finished album job's result; the number of tracks it analyzed."""
        analyzed = int(result.get("analyzed", 0))
        self.albums_done += 1
        self.tracks_analyzed += analyzed
        self.tracks_skipped += int(result.get("skipped", 0))
        self.tracks_failed += int(result.get("failed", 0))
        self.tracks_imported += int(result.get("imported", 0))
        self.tracks_fast += int(result.get("fast", 0))
        for part, count in result.get("parts_updated", {}).items():
            self.parts_updated[part] = self.parts_updated.get(part, 0) + int(count)
        self.audio_seconds += float(result.get("audio_seconds", 0.0))
        if analyzed == 0 and result.get("failed", 0) == 0 and not result.get("parts_updated"):
            self.albums_unchanged += 1
        _extend(self.failures, result.get("failures", []))
        self.clap_embedded += int(result.get("clap_embedded", 0))
        self.clap_failed += int(result.get("clap_failed", 0))
        _extend(self.clap_failures, result.get("clap_failures", []))
        for choice in result.get("providers", []):
            ran = self.providers.setdefault(str(choice.get("model", "")), [])
            if choice.get("provider") and choice["provider"] not in ran:
                ran.append(choice["provider"])
            for line in choice.get("fallbacks", []):
                entry = f"{choice.get('model')}: {line}"
                if entry not in self.provider_fallbacks and len(self.provider_fallbacks) < MAX_REPORTED_FAILURES:
                    self.provider_fallbacks.append(entry)
        return analyzed

    def as_result(self) -> dict[str, Any]:
        """The run's result as stored and served (/api/status, /api/analysis/summary): flat, reference names."""
        result = asdict(self)
        follow_ups = result.pop("follow_ups")
        if result["elapsed_seconds"] is None:
            del result["elapsed_seconds"]
        result.update(follow_ups)
        return result


def _extend(into: list[dict[str, Any]], more: list[dict[str, Any]]) -> None:
    into.extend(more[:max(MAX_REPORTED_FAILURES - len(into), 0)])
