"""Guidance history per repository and path, and the audit trail of decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from bot.records import GuidanceEntry, utcnow
from bot.store.engine import Database, StoreError
from bot.store.models import AuditEntry, StoredGuidance, json_safe
from bot.store.tables import AuditRow, GuidanceRow


class HistoryQueries(Database):
    """The `Store`'s guidance history and audit trail."""

    # --- guidance history ------------------------------------------------------------------------

    def add_guidance(
        self, repo: str, entry: GuidanceEntry, *, run_id: str | None = None, episode_id: str | None = None
    ) -> int:
        if not repo:
            raise StoreError("guidance needs the repository it is about")
        fields = entry.model_dump(include=set(GuidanceEntry.model_fields))
        row = GuidanceRow(**fields, repo=repo, run_id=run_id, episode_id=episode_id)
        with self.write_session() as session:
            session.add(row)
            session.flush()
            return row.id

    def guidance_repos(self) -> list[str]:
        """Every repository (GitHub `owner/name` or a local folder name) with guidance on record, sorted."""
        with self.read_session() as session:
            return list(session.scalars(select(GuidanceRow.repo).distinct().order_by(GuidanceRow.repo)))

    def list_guidance(
        self, repo: str, *, path: str | None = None, episode_id: str | None = None, limit: int = 50
    ) -> list[StoredGuidance]:
        """Newest first; `path` and `episode_id` narrow the list when given."""
        query = (
            select(GuidanceRow)
            .where(GuidanceRow.repo == repo)
            .order_by(GuidanceRow.created_at.desc(), GuidanceRow.id.desc())
            .limit(limit)
        )
        if path is not None:
            query = query.where(GuidanceRow.path == path)
        if episode_id is not None:
            query = query.where(GuidanceRow.episode_id == episode_id)
        with self.read_session() as session:
            return [StoredGuidance.model_validate(row, from_attributes=True) for row in session.scalars(query)]

    def forget_guidance(self, guidance_id: int, *, repo: str | None = None) -> bool:
        """Delete one guidance entry (only if it is about `repo`, when given); False when there was none."""
        query = delete(GuidanceRow).where(GuidanceRow.id == guidance_id)
        if repo is not None:
            query = query.where(GuidanceRow.repo == repo)
        with self.write_session() as session:
            return session.execute(query).rowcount > 0

    # --- audit -----------------------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        decision: str,
        risk_score: float | None = None,
        details: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int:
        row = AuditRow(
            created_at=utcnow(),
            actor=actor,
            action=action,
            subject=subject,
            decision=decision,
            risk_score=risk_score,
            details=json_safe(details or {}),
            run_id=run_id,
        )
        with self.write_session() as session:
            session.add(row)
            session.flush()
            return row.id

    def last_audit_at(self, *, action: str, subject: str) -> datetime | None:
        """When `action` was last audited for `subject` (e.g. the last refusal reply to someone), or None."""
        query = select(func.max(AuditRow.created_at)).where(AuditRow.action == action, AuditRow.subject == subject)
        with self.read_session() as session:
            last = session.scalar(query)
        return last.replace(tzinfo=UTC) if last is not None and last.tzinfo is None else last

    def list_audit(self, *, run_id: str | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        query = select(AuditRow).order_by(AuditRow.created_at.desc(), AuditRow.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(AuditRow.run_id == run_id)
        if action is not None:
            query = query.where(AuditRow.action == action)
        with self.read_session() as session:
            return [AuditEntry.model_validate(row, from_attributes=True) for row in session.scalars(query)]
