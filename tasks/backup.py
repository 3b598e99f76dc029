"""The backup job: services.backup.create_backup as a task (from the Settings page, POST /api/backup or a
schedule)."""

from __future__ import annotations

from typing import Any

from services.backup import create_backup
from tasks.catalog import BACKUP
from tasks.progress import TaskContext, task


@task(BACKUP.task_type)
def run_backup_task(ctx: TaskContext, reason: str = "") -> dict[str, Any]:
    ctx.report("Backing up the database and the settings key", phase="backup", progress=5)
    made = create_backup(ctx.config, ctx.db)
    ctx.report(f"Backed up to {made.name} ({made.bytes:,} bytes)", progress=100)
    return {**made.as_dict(), "reason": reason}
