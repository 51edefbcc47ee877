"""Read queries for the dashboard and the Prometheus gauges: recent iterations by repository, and counts
of deliveries and runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from pydantic import BaseModel
from sqlalchemy import func, select

from bot.records import IterationRecord
from bot.store.engine import Database
from bot.store.tables import DeliveryRow, IterationRow, RunRow


class RunCount(BaseModel):
    kind: str
    status: str
    count: int


class DashboardQueries(Database):
    """The `Store`'s reads behind the dashboard and /metrics."""

    def iterations_by_repo(self, limit: int) -> dict[str, list[IterationRecord]]:
        """The newest `limit` iterations, newest first, grouped by the repository their episode is about."""
        query = (
            select(IterationRow.repo, IterationRow.data)
            .order_by(IterationRow.started_at.desc(), IterationRow.id.desc())
            .limit(limit)
        )
        grouped: dict[str, list[IterationRecord]] = defaultdict(list)
        with self.read_session() as session:
            for repo, data in session.execute(query):
                grouped[repo].append(IterationRecord.model_validate(data))
        return grouped

    def delivery_counts(self, statuses: Collection[str] | None = None) -> dict[str, int]:
        """Webhook deliveries by status (only `statuses`, when given; a status with none is left out)."""
        query = select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        if statuses is not None:
            query = query.where(DeliveryRow.status.in_(statuses))
        with self.read_session() as session:
            return {status: count for status, count in session.execute(query)}

    def run_counts(self) -> list[RunCount]:
        """Runs by kind and status."""
        query = select(RunRow.kind, RunRow.status, func.count().label("count")).group_by(RunRow.kind, RunRow.status)
        with self.read_session() as session:
            return [RunCount.model_validate(row, from_attributes=True) for row in session.execute(query)]
