"""Scheduled tasks: cron expressions and what a schedule may start (pure; the scheduler is tasks/scheduler.py)."""
