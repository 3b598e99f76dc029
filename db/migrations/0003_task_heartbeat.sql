-- A running task's own heartbeat, so a task whose worker vanished on another host is noticed within a minute.
ALTER TABLE task_status ADD COLUMN heartbeat_at TIMESTAMPTZ;
