"""The GitHub side of the store: webhook deliveries, installations, the bot's pull requests, human feedback.

The tables are in `bot/store/tables.py` (migrations 0002 and 0004), the models in `github_models.py`
(imported from here by the rest of the code). `GitHubStore` wraps an open `Store` and uses its sessions;
like `Store`, it is synchronous (calls take a millisecond or two; async code calls it from a thread) and
safe to share between threads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, null, or_, select, update
from sqlalchemy.orm import Session

from bot.records import utcnow
from bot.store.github_models import (
    BotPullRequest,
    DeliveryInfo,
    DeliveryRecord,
    DeliveryStatus,
    DeliveryUpdate,
    HumanFeedback,
    InstallationInfo,
    PullState,
)
from bot.store.store import Store
from bot.store.tables import (
    BotPullRequestRow,
    DeliveryRow,
    EpisodeRow,
    HumanFeedbackRow,
    InstallationRepositoryRow,
    InstallationRow,
)

__all__ = [
    "BotPullRequest",
    "DeliveryInfo",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeliveryUpdate",
    "GitHubStore",
    "HumanFeedback",
    "InstallationInfo",
    "PullState",
]

WAITING_FOR_ADMISSION: tuple[DeliveryStatus, ...] = ("received", "failed")


# --- the API -------------------------------------------------------------------------------------


class GitHubStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._read = store.read_session
        self._write = store.write_session
        self._insert = store.insert

    def ping(self) -> None:
        with self._read() as session:
            session.execute(select(1))

    # --- deliveries ------------------------------------------------------------------------------

    def write_deliveries(self, operations: list[DeliveryRecord | DeliveryUpdate]) -> list[bool]:
        """Apply records and updates in order, in one transaction (group commit for busy receivers).

        Returns, per operation, whether a record was new (False: a redelivery) or an update applied
        (False: no such row, or its claim is no longer the caller's).
        """
        now = utcnow()
        results: list[bool] = []
        with self._write() as session:
            for op in operations:
                if isinstance(op, DeliveryRecord):
                    # SQL NULL, not JSON null, for "no job": the admission queries test `job IS NOT NULL`
                    stmt = (
                        self._insert(DeliveryRow)
                        .values(**op.model_dump(exclude={"job"}), job=null() if op.job is None else op.job,
                                received_at=now, updated_at=now)
                        .on_conflict_do_nothing(index_elements=["delivery_id"])
                        .returning(DeliveryRow.delivery_id)  # rowcount is -1 here with psycopg 3 on Postgres
                    )
                    results.append(session.execute(stmt).first() is not None)
                else:
                    values: dict[str, Any] = {
                        "status": op.status, "detail": op.detail, "updated_at": now, "claimed_by": None,
                        "available_at": now + timedelta(seconds=op.retry_after_s) if op.retry_after_s else None,
                    }
                    if not op.keep_job:
                        values["job"] = null()
                    stmt = update(DeliveryRow).where(DeliveryRow.delivery_id == op.delivery_id)
                    if op.claim is not None:
                        stmt = stmt.where(DeliveryRow.claimed_by == op.claim)
                    results.append(session.execute(stmt.values(values)).rowcount == 1)
        return results

    def get_delivery(self, delivery_id: str) -> DeliveryInfo | None:
        with self._read() as session:
            row = session.get(DeliveryRow, delivery_id)
            return DeliveryInfo.model_validate(row, from_attributes=True) if row else None

    def list_deliveries(self, *, status: DeliveryStatus | None = None, limit: int = 100) -> list[DeliveryInfo]:
        """Newest first."""
        query = select(DeliveryRow).order_by(DeliveryRow.received_at.desc()).limit(limit)
        if status is not None:
            query = query.where(DeliveryRow.status == status)
        with self._read() as session:
            return [DeliveryInfo.model_validate(row, from_attributes=True) for row in session.scalars(query)]

    def pending_admissions(self, limit: int = 1000) -> list[DeliveryInfo]:
        """Deliveries acknowledged but not admitted (stopped in between, or GitHub failed), oldest first."""
        query = (
            select(DeliveryRow)
            .where(DeliveryRow.status.in_(WAITING_FOR_ADMISSION), DeliveryRow.job.is_not(None))
            .order_by(DeliveryRow.received_at)
            .limit(limit)
        )
        with self._read() as session:
            return [DeliveryInfo.model_validate(row, from_attributes=True) for row in session.scalars(query)]

    def claim_admissions(self, claim: str, *, limit: int = 64, lease_s: float = 120.0) -> list[DeliveryInfo]:
        """Take up to `limit` deliveries waiting for admission, oldest first, for `lease_s` seconds.

        A row goes to one caller only, however many admitters (threads, processes, machines) ask at
        once: the rows are chosen and taken in one write transaction (SQLite runs writers one at a time;
        Postgres skips rows another claimer has locked, and the UPDATE checks the condition again).
        Rows claimed by someone else are skipped until their lease runs out (the admitter died), failed
        ones until their backoff has passed. `claim` names this batch; outcomes are written with
        `DeliveryUpdate(claim=...)`.
        """
        now = utcnow()
        claimable = (
            DeliveryRow.status.in_(WAITING_FOR_ADMISSION),
            DeliveryRow.job.is_not(None),
            or_(DeliveryRow.available_at.is_(None), DeliveryRow.available_at <= now),
        )
        with self._read() as session:  # an idle admitter polls without taking the write lock
            if session.scalar(select(DeliveryRow.delivery_id).where(*claimable).limit(1)) is None:
                return []
        with self._write() as session:
            ids = session.scalars(
                select(DeliveryRow.delivery_id).where(*claimable).order_by(DeliveryRow.received_at).limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not ids:
                return []
            claimed = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id.in_(ids), *claimable)
                .values(claimed_by=claim, available_at=now + timedelta(seconds=lease_s), attempts=DeliveryRow.attempts + 1)
                .returning(*DeliveryRow.__table__.columns),
                execution_options={"synchronize_session": False},
            ).mappings().all()
        # models built after the commit: the write lock is held no longer than the UPDATE
        return sorted((DeliveryInfo.model_validate(dict(row)) for row in claimed), key=lambda d: d.received_at)

    def release_claims(self, prefix: str) -> int:
        """Make the rows claimed under `prefix` (one admitter's earlier life) available again at once."""
        with self._write() as session:
            result = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.claimed_by.startswith(prefix, autoescape=True),
                       DeliveryRow.status.in_(WAITING_FOR_ADMISSION))
                .values(claimed_by=None, available_at=None)
            )
            return result.rowcount

    # --- installations ---------------------------------------------------------------------------

    def record_installation(
        self,
        installation_id: int,
        *,
        account: str | None = None,
        app_id: int | None = None,
        repository_selection: str | None = None,
        repositories: list[str] | None = None,
        active: bool = True,
    ) -> None:
        """Insert or update an installation; `repositories`, when given, replaces its repository list."""
        now = utcnow()
        values = {
            "installation_id": installation_id, "account": account, "app_id": app_id,
            "repository_selection": repository_selection, "active": active, "created_at": now, "updated_at": now,
        }
        stmt = self._insert(InstallationRow).values(values)
        changed = {k: stmt.excluded[k] for k in values if k not in ("installation_id", "created_at")}
        if account is None:
            changed.pop("account")
        if app_id is None:
            changed.pop("app_id")
        with self._write() as session:
            session.execute(stmt.on_conflict_do_update(index_elements=["installation_id"], set_=changed))
            if repositories is not None:
                session.execute(
                    delete(InstallationRepositoryRow).where(InstallationRepositoryRow.installation_id == installation_id)
                )
                self._add_repositories(session, installation_id, repositories)

    def change_installation_repositories(self, installation_id: int, *, added: list[str], removed: list[str]) -> None:
        with self._write() as session:
            if session.get(InstallationRow, installation_id) is None:
                now = utcnow()
                session.add(InstallationRow(installation_id=installation_id, active=True, created_at=now, updated_at=now))
            if removed:
                session.execute(
                    delete(InstallationRepositoryRow).where(
                        InstallationRepositoryRow.installation_id == installation_id,
                        InstallationRepositoryRow.repo.in_(removed),
                    )
                )
            self._add_repositories(session, installation_id, added)

    def _add_repositories(self, session: Session, installation_id: int, repos: list[str]) -> None:
        if repos:
            session.execute(
                self._insert(InstallationRepositoryRow)
                .values([{"installation_id": installation_id, "repo": repo} for repo in sorted(set(repos))])
                .on_conflict_do_nothing()
            )

    def get_installation(self, installation_id: int) -> InstallationInfo | None:
        with self._read() as session:
            row = session.get(InstallationRow, installation_id)
            return self._installation(session, row) if row else None

    def list_installations(self, *, active_only: bool = True) -> list[InstallationInfo]:
        query = select(InstallationRow).order_by(InstallationRow.installation_id)
        if active_only:
            query = query.where(InstallationRow.active.is_(True))
        with self._read() as session:
            return [self._installation(session, row) for row in session.scalars(query)]

    def installation_for_repo(self, repo: str) -> int | None:
        query = (
            select(InstallationRepositoryRow.installation_id)
            .join(InstallationRow, InstallationRow.installation_id == InstallationRepositoryRow.installation_id)
            .where(InstallationRepositoryRow.repo == repo, InstallationRow.active.is_(True))
            .limit(1)
        )
        with self._read() as session:
            return session.scalar(query)

    def _installation(self, session: Session, row: InstallationRow) -> InstallationInfo:
        repos = session.scalars(
            select(InstallationRepositoryRow.repo)
            .where(InstallationRepositoryRow.installation_id == row.installation_id)
            .order_by(InstallationRepositoryRow.repo)
        )
        info = InstallationInfo.model_validate(row, from_attributes=True)
        info.repositories = list(repos)
        return info

    # --- the bot's pull requests -----------------------------------------------------------------

    def upsert_bot_pr(self, pr: BotPullRequest) -> None:
        now = utcnow()
        values = {**pr.model_dump(), "created_at": now, "updated_at": now}
        stmt = self._insert(BotPullRequestRow).values(values)
        changed = {k: stmt.excluded[k] for k in values if k not in ("repo", "number", "created_at")}
        with self._write() as session:
            session.execute(stmt.on_conflict_do_update(index_elements=["repo", "number"], set_=changed))

    def set_bot_pr_state(self, repo: str, number: int, state: PullState) -> bool:
        with self._write() as session:
            result = session.execute(
                update(BotPullRequestRow)
                .where(BotPullRequestRow.repo == repo, BotPullRequestRow.number == number)
                .values(state=state, updated_at=utcnow())
            )
            return result.rowcount == 1

    def get_bot_pr_by_number(self, repo: str, number: int) -> BotPullRequest | None:
        query = select(BotPullRequestRow).where(BotPullRequestRow.repo == repo, BotPullRequestRow.number == number)
        with self._read() as session:
            row = session.scalar(query)
            return BotPullRequest.model_validate(row, from_attributes=True) if row else None

    def get_bot_pr_by_branch(self, repo: str, branch: str) -> BotPullRequest | None:
        """The most recent PR of `branch` (a branch may be reopened as a new PR after one is closed)."""
        query = (
            select(BotPullRequestRow)
            .where(BotPullRequestRow.repo == repo, BotPullRequestRow.branch == branch)
            .order_by(BotPullRequestRow.number.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.scalar(query)
            return BotPullRequest.model_validate(row, from_attributes=True) if row else None

    def count_open_bot_prs(self, repo: str) -> int:
        query = select(func.count()).select_from(BotPullRequestRow).where(
            BotPullRequestRow.repo == repo, BotPullRequestRow.state == "open")
        with self._read() as session:
            return session.scalar(query) or 0

    def finding_pull_states(self, repo: str) -> dict[str, PullState]:
        """Scan findings (bot/runs/scan.py) that had a bot PR: finding key → the state of its newest PR.

        A PR's finding is its episode's task source, `scan:<key>`, found through the PR's run."""
        query = (
            select(BotPullRequestRow.state, EpisodeRow.data)
            .join(EpisodeRow, EpisodeRow.run_id == BotPullRequestRow.run_id)
            .where(BotPullRequestRow.repo == repo)
            .order_by(BotPullRequestRow.number)
        )
        states: dict[str, PullState] = {}
        with self._read() as session:
            for state, data in session.execute(query):
                source = str((data.get("task") or {}).get("source") or "")
                if source.startswith("scan:"):
                    states[source.removeprefix("scan:")] = state
        return states

    # --- human feedback --------------------------------------------------------------------------

    def record_feedback(self, feedback: HumanFeedback) -> bool:
        """Record a merge (positive) or an unmerged close (negative) once per delivery; False if seen.

        Fills branch, proposal and run from `bot_pull_requests` when the caller does not know them, and
        moves that PR's state to merged/closed.
        """
        with self._write() as session:
            pr = session.scalar(
                select(BotPullRequestRow).where(
                    BotPullRequestRow.repo == feedback.repo, BotPullRequestRow.number == feedback.number
                )
            )
            values = feedback.model_dump(exclude={"created_at"})
            if pr is not None:
                values["branch"] = values["branch"] or pr.branch
                values["proposal_id"] = values["proposal_id"] or pr.proposal_id
                values["run_id"] = values["run_id"] or pr.run_id
            values["created_at"] = feedback.created_at or utcnow()
            stmt = (self._insert(HumanFeedbackRow).values(values).on_conflict_do_nothing(index_elements=["delivery_id"])
                    .returning(HumanFeedbackRow.delivery_id))  # rowcount is -1 here with psycopg 3 on Postgres
            inserted = session.execute(stmt).first() is not None
            if inserted and pr is not None:
                pr.state = "merged" if feedback.merged else "closed"
                pr.updated_at = utcnow()
            return inserted

    def list_feedback(self, *, repo: str | None = None, limit: int = 100) -> list[HumanFeedback]:
        """Newest first."""
        query = select(HumanFeedbackRow).order_by(HumanFeedbackRow.created_at.desc(), HumanFeedbackRow.id.desc()).limit(limit)
        if repo is not None:
            query = query.where(HumanFeedbackRow.repo == repo)
        with self._read() as session:
            return [HumanFeedback.model_validate(row, from_attributes=True) for row in session.scalars(query)]

