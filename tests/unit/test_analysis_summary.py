"""The analysis run's summary record: album results folded in, failure lists bounded, the result's field names."""

from __future__ import annotations

from tasks.analysis_summary import MAX_REPORTED_FAILURES, AnalysisSummary


def test_album_results_fold_into_the_reference_field_names() -> None:
    summary = AnalysisSummary(albums_total=3, top_n_moods=5, clap_enabled=False)
    assert summary.add_album({"analyzed": 4, "skipped": 1, "failed": 1, "audio_seconds": 12.5,
                              "failures": [{"item_id": "x"}], "clap_embedded": 2}) == 4
    assert summary.add_album({"analyzed": 0, "skipped": 3, "failed": 0}) == 0
    summary.add_album_error("Broken", "FAILURE", "decoder died")
    result = summary.as_result()
    assert {k: result[k] for k in ("albums_done", "albums_failed", "albums_unchanged", "tracks_analyzed",
                                   "tracks_skipped", "tracks_failed", "audio_seconds", "clap_embedded")} == {
        "albums_done": 3, "albums_failed": 1, "albums_unchanged": 1, "tracks_analyzed": 4, "tracks_skipped": 4,
        "tracks_failed": 1, "audio_seconds": 12.5, "clap_embedded": 2}
    assert result["album_errors"] == [{"album": "Broken", "status": "FAILURE", "reason": "decoder died"}]
    assert "elapsed_seconds" not in result and "map_task_id" not in result and "follow_ups" not in result
    summary.follow_ups = {"map_task_id": "m1"}
    summary.elapsed_seconds = 3.2
    assert summary.as_result()["map_task_id"] == "m1" and summary.as_result()["elapsed_seconds"] == 3.2


def test_failure_lists_are_bounded_while_the_counts_stay_exact() -> None:
    summary = AnalysisSummary(albums_total=2, top_n_moods=5, clap_enabled=True)
    for _ in range(2):
        failures = [{"n": i} for i in range(MAX_REPORTED_FAILURES)]
        summary.add_album({"failed": MAX_REPORTED_FAILURES, "failures": failures})
    assert summary.tracks_failed == 2 * MAX_REPORTED_FAILURES and len(summary.failures) == MAX_REPORTED_FAILURES
