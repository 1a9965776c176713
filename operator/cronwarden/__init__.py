"""cronwarden: reconciles ScheduledTasks into CronJobs and reports on their runs."""

__version__ = "0.1.0"
