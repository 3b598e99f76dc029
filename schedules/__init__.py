"""Schedules: cron expressions, their meaning in words and their run times (pure; the scheduler that starts the
runs is tasks/schedules.py, what a schedule may start is tasks/catalog.py)."""
