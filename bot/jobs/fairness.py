"""One installation cannot take every worker: its jobs share a few queue partitions.

The job queue runs at most one job per partition at a time (across every process), and DBOS picks among
the partitions with work at random. Keyed by issue or branch alone, an installation that files fifty
issues would hold fifty partitions against another installation's one and take nearly every free
worker. So a job's partition is `installation-<id>/<bucket>`, the bucket a hash of its own key
(`JobRequest.partition_key`: the issue, the PR branch, the scan) modulo the installation's share,
`AURA_INSTALLATION_CONCURRENCY` (by default one less than `AURA_QUEUE_CONCURRENCY`, at least 1). An
installation then runs at most that many jobs at once, and the jobs of one issue or branch still land in
one partition, so they never overlap. Two keys may share a bucket and wait for each other: the price of
the cap. A deployment that serves one installation sets the share to its total number of job slots.
"""

from __future__ import annotations

import hashlib

from bot.config import Settings
from bot.github.job_request import JobRequest


def installation_share(settings: Settings) -> int:
    return settings.installation_concurrency or max(1, settings.queue_concurrency - 1)


def queue_partition(job: JobRequest, settings: Settings) -> str:
    """The queue partition `job` runs in (see the module docstring)."""
    if job.installation_id is None:
        return job.partition_key
    digest = hashlib.sha256(job.partition_key.encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % installation_share(settings)
    return f"installation-{job.installation_id}/{bucket}"
