"""Durable jobs: each admitted webhook delivery runs the cycle as a DBOS workflow and publishes the result.

`DBOSJobQueue` (bot/jobs/durable.py) is the `JobQueue` `serve` and `worker` use; the workflow and its
steps are in bot/jobs/workflow.py; git for a job in bot/jobs/git.py; what a job writes on GitHub in
bot/jobs/report.py. See docs/github-app.md, "Jobs".
"""

from bot.jobs.durable import APPLICATION_VERSION, DBOSJobQueue, dbos_config, executor_id
from bot.jobs.job_steps import JobOutcome, JobServices
from bot.jobs.workflow import merge_jobs

__all__ = ["APPLICATION_VERSION", "DBOSJobQueue", "JobOutcome", "JobServices", "dbos_config", "executor_id", "merge_jobs"]
