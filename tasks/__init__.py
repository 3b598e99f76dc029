"""RQ entry points and the task framework they share (progress, queues, reconciliation, worker)."""
