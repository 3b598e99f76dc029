-- The pages' task panel lists the main tasks that finished lately (/api/tasks/panel, asked every second by each
-- open page): found by this index instead of a scan of every task and batch row.
CREATE INDEX IF NOT EXISTS task_status_main_finished_idx ON task_status (finished_at DESC) WHERE parent_task_id IS NULL;
