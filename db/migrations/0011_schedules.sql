-- Scheduled tasks: the schedules of the Schedules page (the first schema's unused cron_schedules table, renamed and
-- completed) and one row per run time a scheduler claimed. The primary key of schedule_runs is what makes a due
-- run start once however many schedulers (worker processes, hosts) see it: the first INSERT wins.
ALTER TABLE cron_schedules RENAME TO schedules;
ALTER TABLE schedules RENAME CONSTRAINT cron_schedules_pkey TO schedules_pkey;
ALTER TABLE schedules RENAME CONSTRAINT cron_schedules_name_key TO schedules_name_key;
ALTER TABLE schedules
    ADD COLUMN timezone     TEXT NOT NULL DEFAULT 'UTC',
    ADD COLUMN last_due_at  TIMESTAMPTZ,        -- the latest run time claimed (started, skipped or missed)
    ADD COLUMN last_outcome TEXT,               -- started, skipped, missed, failed
    ADD COLUMN last_task_id TEXT,
    ADD COLUMN last_message TEXT,
    ADD CONSTRAINT schedules_task_type CHECK (task_type IN
        ('analysis', 'clustering', 'cleaning', 'map_projection', 'sonic_fingerprint'));

CREATE TABLE schedule_runs (
    schedule_id BIGINT NOT NULL REFERENCES schedules (schedule_id) ON DELETE CASCADE,
    due_at      TIMESTAMPTZ NOT NULL,            -- the run time (for "run now", the moment it was asked)
    kind        TEXT NOT NULL CHECK (kind IN ('scheduled', 'catch_up', 'manual')),
    missed      INTEGER NOT NULL DEFAULT 0,      -- earlier run times folded into this catch-up run
    outcome     TEXT NOT NULL DEFAULT 'claimed' CHECK (outcome IN ('claimed', 'started', 'skipped', 'missed',
                                                                   'failed')),
    task_id     TEXT,
    message     TEXT,
    claimed_by  TEXT NOT NULL DEFAULT '',
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, due_at)
);
CREATE INDEX schedule_runs_recent ON schedule_runs (schedule_id, claimed_at DESC);
