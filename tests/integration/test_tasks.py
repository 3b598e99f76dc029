"""The task framework on a real PostgreSQL, Redis and RQ worker."""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from db import task_status as store
from tasks.reconcile import reconcile_dead_workers
from tests.conftest import wait_for
from tests.integration import jobs


def test_enqueue_progress_success(config, db, redis, run_worker_burst, client):
    task_id = jobs.start(jobs.count_to, {"n": 8}, config=config)
    pending = client.get(f"/api/status/{task_id}").get_json()
    assert pending["status"] == "PENDING" and pending["task_type"] == "test_count"

    run_worker_burst()

    body = client.get(f"/api/status/{task_id}").get_json()
    assert body["status"] == "SUCCESS"
    assert body["progress"] == 100
    assert (body["current"], body["total"]) == (8, 8)
    assert body["result"] == {"counted": 8}
    # The log is bounded to TASK_LOG_LINES=5 and keeps the newest lines.
    assert [e["message"] for e in body["log"]] == ["step 4/8", "step 5/8", "step 6/8", "step 7/8", "step 8/8"]
    job = Job.fetch(task_id, connection=redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.meta["progress"] == 100 and job.meta["current"] == 8
    assert client.get("/api/last_task").get_json()["task_id"] == task_id


def test_failure_is_recorded_with_traceback_summary(config, db, redis, run_worker_burst, client):
    task_id = jobs.start(jobs.explode, {"value": 42}, config=config)
    run_worker_burst()
    body = client.get(f"/api/status/{task_id}").get_json()
    assert body["status"] == "FAILURE"
    assert body["status_message"] == "ValueError: bad input 42"
    recorded = store.get_task(db, task_id)["error"]  # the traceback is kept, for the logs and the database
    assert "Traceback" in recorded and "raise ValueError" in recorded
    assert body["error"] == "ValueError: bad input 42"  # clients get the cause
    assert body["log"][-1]["message"] == "Failed: ValueError: bad input 42"
    assert task_id in FailedJobRegistry("high", connection=redis).get_job_ids()


def test_only_one_main_task_of_a_kind(config, run_worker_burst):
    first = jobs.start(jobs.count_to, {"n": 1}, config=config)
    with pytest.raises(store.TaskAlreadyRunning) as refused:
        jobs.start(jobs.count_to, {"n": 1}, config=config)
    assert refused.value.active_task_id == first
    jobs.start(jobs.other_kind, {}, config=config)  # another kind may run beside it
    run_worker_burst()
    jobs.start(jobs.count_to, {"n": 1}, config=config)  # finished: a new one may start


def test_guard_holds_under_concurrent_starts(config, db):
    results: list[str] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        try:
            jobs.start(jobs.count_to, {"n": 1}, config=config)
            results.append("started")
        except store.TaskAlreadyRunning:
            results.append("refused")

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused"] * 5 + ["started"]
    rows = db.fetch_all("SELECT status FROM task_status WHERE task_type = 'test_count'")
    assert [r["status"] for r in rows] == ["PENDING"]


def test_cancel_of_a_queued_task_keeps_it_from_running(config, db, redis, run_worker_burst, client):
    task_id = jobs.start(jobs.count_to, {"n": 3}, config=config)
    csrf_free = client.post(f"/api/cancel/{task_id}")  # a script without browser headers, auth off
    assert csrf_free.status_code == 200 and csrf_free.get_json()["revoked_task_ids"] == [task_id]
    assert Job.fetch(task_id, connection=redis).get_status() == JobStatus.CANCELED
    run_worker_burst()
    row = store.get_task(db, task_id)
    assert row["status"] == "REVOKED" and row["started_at"] is None
    again = client.post(f"/api/cancel/{task_id}")  # ended already: nothing to cancel, as the reference answers
    assert again.status_code == 200 and again.get_json()["cancelled_jobs_count"] == 0
    assert again.get_json()["status"] == "REVOKED"


def test_cancel_reaches_a_running_child(config, db, worker_processes, client):
    worker_processes()
    worker_processes()
    main_id = jobs.start(jobs.orchestrator, {"children": 1, "steps": 400, "pause": 0.05},
                              config=config)
    child = wait_for(lambda: db.fetch_one(
        "SELECT task_id FROM task_status WHERE parent_task_id = %s AND status = 'PROGRESS' AND progress > 0",
        (main_id,)), what="the child to make progress")
    response = client.post(f"/api/cancel/{main_id}")
    assert response.status_code == 200
    assert set(response.get_json()["revoked_task_ids"]) == {main_id, child["task_id"]}

    def child_stopped() -> dict | None:
        row = store.get_task(db, child["task_id"])
        return row if row["finished_at"] is not None else None

    stopped = wait_for(child_stopped, what="the child to stop")
    assert stopped["status"] == "REVOKED"
    assert stopped["progress"] < 100
    assert stopped["log"][-1]["message"] == "Cancelled"
    main = wait_for(lambda: (r := store.get_task(db, main_id))["finished_at"] and r, what="the main task to stop")
    assert main["status"] == "REVOKED"


def kill_worker_and_horse(worker) -> None:
    """SIGKILL a worker and the work-horse it forked (RQ puts the horse in its own session), as a container
    kill or an OOM kill of the whole worker would."""
    horses = psutil.Process(worker.pid).children(recursive=True)
    os.killpg(worker.pid, signal.SIGKILL)
    for horse in horses:
        horse.kill()
    worker.wait()
    psutil.wait_procs(horses, timeout=10)


def test_task_of_a_killed_worker_is_reconciled(config, db, redis, worker_processes):
    worker = worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60) == []  # its worker is alive: leave it alone

    kill_worker_and_horse(worker)
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60) == [task_id]

    row = store.get_task(db, task_id)
    assert row["status"] == "FAILURE"
    assert "died while running this task" in row["error"]
    assert task_id in FailedJobRegistry("high", connection=redis).get_job_ids()
    assert Job.fetch(task_id, connection=redis).get_status() == JobStatus.FAILED
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60) == []  # idempotent
    jobs.start(jobs.count_to, {"n": 1}, config=config)  # the guard is released


def test_silent_task_on_another_host_is_reconciled(config, db, redis, worker_processes):
    worker = worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    kill_worker_and_horse(worker)
    # As seen from another machine: no process check possible, and RQ still lists the dead worker.
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60, this_host="elsewhere") == []
    db.execute("UPDATE task_status SET heartbeat_at = now() - interval '2 minutes' WHERE task_id = %s", (task_id,))
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60, this_host="elsewhere") == [task_id]
    assert "no heartbeat for 12" in store.get_task(db, task_id)["error"]


def test_live_local_worker_wins_over_an_old_heartbeat(config, db, redis, worker_processes):
    """After a suspend, heartbeats are old but the worker is alive: the process table decides."""
    worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    db.execute("UPDATE task_status SET heartbeat_at = now() - interval '10 minutes' WHERE task_id = %s", (task_id,))
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60) == []
    assert store.get_task(db, task_id)["status"] == "PROGRESS"


def test_lost_pending_job_is_failed_and_releases_the_guard(config, db, redis):
    task_id = jobs.start(jobs.count_to, {"n": 1}, config=config)
    redis.flushdb()  # Redis restarted without its data: the queued job is gone
    assert reconcile_dead_workers(db, redis, dead_after_seconds=60, pending_after_seconds=0) == [task_id]
    assert "queued job was lost" in store.get_task(db, task_id)["error"]
    jobs.start(jobs.count_to, {"n": 1}, config=config)


def test_a_task_failed_from_outside_stops_and_stays_failed(config, db, redis, worker_processes):
    worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    store.fail_task(db, task_id, "failed by an operator")
    # It would count for 500 s if it did not notice; it stops at its next check instead.
    wait_for(lambda: Job.fetch(task_id, connection=redis).get_status() == JobStatus.FINISHED, timeout=30,
             what="the job to stop")
    row = store.get_task(db, task_id)
    assert row["status"] == "FAILURE" and row["error"] == "failed by an operator" and row["progress"] < 100


def test_running_task_keeps_its_heartbeat(config, db, worker_processes):
    worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 100, "pause": 0.05}, config=config)
    first = wait_for(lambda: db.fetch_one("SELECT heartbeat_at FROM task_status WHERE task_id = %s AND "
                                          "heartbeat_at IS NOT NULL", (task_id,)), what="a first heartbeat")
    wait_for(lambda: db.fetch_one("SELECT 1 FROM task_status WHERE task_id = %s AND heartbeat_at > %s",
                                  (task_id, first["heartbeat_at"])), what="a later heartbeat")


def test_new_worker_reconciles_on_start(config, db, redis, worker_processes):
    worker = worker_processes()
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    kill_worker_and_horse(worker)
    replacement = worker_processes("--burst")
    assert replacement.wait(60) == 0
    assert store.get_task(db, task_id)["status"] == "FAILURE"


def test_a_progress_report_rides_out_a_redis_restart(config, db, tmp_path):
    """Issue 32: a Redis restart of a few seconds must not fail the running task at its next progress report; the
    report waits for Redis (as status writes wait for PostgreSQL) and lands in both."""
    import socket
    import subprocess
    import threading

    from rq.job import Job

    from db import task_status as store
    from infra.connections import get_redis
    from infra.embedded import redis_server_binary
    from tasks.progress import TaskContext

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def redis_server() -> subprocess.Popen[bytes]:
        server = subprocess.Popen([str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        wait_for(lambda: _pings(port), timeout=10, what="redis-server")
        return server

    first = redis_server()
    # the connection a worker makes (tasks/worker.py): its commands wait for a restarted Redis
    connection = get_redis(config.with_overrides(REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_TIMEOUT_SECONDS=1),
                           outage_seconds=30)
    task_id = "progress-drill-1"
    store.insert_task(db, task_id=task_id, task_type="progress_drill")
    job = Job.create("builtins.print", connection=connection, id=task_id)
    job.save()
    ctx = TaskContext(task_id=task_id, task_type="progress_drill", parent_task_id=None, db=db, redis=connection,
                      job=job, config=config)
    first.kill()
    first.wait()
    servers = []
    restart = threading.Timer(1.5, lambda: servers.append(redis_server()))
    restart.start()
    try:
        ctx.report("half way", progress=50)
        restart.join()
        import pickle

        # the restarted server kept nothing (no persistence here): the meta it holds is the report's own write
        assert pickle.loads(connection.hget(job.key, "meta"))["progress"] == 50
        assert store.get_task(db, task_id)["progress"] == 50
    finally:
        restart.join()
        for server in servers:
            server.kill()
            server.wait()


def _pings(port: int) -> bool:
    import redis as redis_lib

    try:
        return bool(redis_lib.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis_lib.ConnectionError:
        return False


def test_a_second_copy_of_a_running_job_is_skipped_and_leaves_its_row_alone(config, db, redis, worker_processes):
    """A queue write redis-py sent again after Redis dropped the connection having run it puts a job on its queue
    twice: the copy a second worker takes must not revoke (nor take over) the row of the copy that runs."""
    from rq import Queue

    first = worker_processes("--queues", "high")
    task_id = jobs.start(jobs.count_to, {"n": 40, "pause": 0.1}, config=config)
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    runner = lambda: db.fetch_one("SELECT worker_name, worker_pid FROM task_status "  # noqa: E731
                                  "WHERE task_id = %s", (task_id,))
    running = runner()
    Queue("high", connection=redis).push_job_id(task_id)  # the second copy
    second = worker_processes("--queues", "high")
    wait_for(lambda: not Queue("high", connection=redis).job_ids, what="the second worker to take the copy")
    done = wait_for(lambda: (row := store.get_task(db, task_id))["finished_at"] and row, timeout=60,
                    what="the task to end")
    assert done["status"] == "SUCCESS" and done["result"] == {"counted": 40}, done
    assert runner() == running and running["worker_pid"] == first.pid
    assert first.poll() is None and second.poll() is None
