"""What the GitHub side of the store takes and returns: deliveries, installations, the bot's pull
requests, human feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

DeliveryStatus = Literal["received", "recorded", "ignored", "denied", "enqueued", "duplicate", "failed"]
PullState = Literal["open", "merged", "closed"]


class DeliveryRecord(BaseModel):
    """A delivery as the receiver records it."""

    delivery_id: str
    event: str
    action: str | None = None
    repo: str | None = None
    installation_id: int | None = None
    sender: str | None = None
    status: DeliveryStatus = "received"
    detail: str | None = None
    job: dict[str, Any] | None = None


class DeliveryInfo(DeliveryRecord):
    """A recorded delivery as the store holds it, with its admission bookkeeping."""

    received_at: datetime
    updated_at: datetime
    claimed_by: str | None = None
    available_at: datetime | None = None
    attempts: int = 0


class DeliveryUpdate(BaseModel):
    delivery_id: str
    status: DeliveryStatus
    detail: str | None = None
    keep_job: bool = False
    # An admitter's outcome: applied only while the row is still claimed by `claim` (a claim whose lease
    # ran out may have been taken by another admitter, whose outcome then counts).
    claim: str | None = None
    retry_after_s: float | None = None  # with keep_job: no admitter takes the row again before this


class InstallationInfo(BaseModel):
    installation_id: int
    account: str | None = None
    app_id: int | None = None
    repository_selection: str | None = None
    active: bool = True
    repositories: list[str] = []


class BotPullRequest(BaseModel):
    repo: str
    number: int
    branch: str
    base_ref: str | None = None
    proposal_id: str | None = None
    run_id: str | None = None
    issue_number: int | None = None
    state: PullState = "open"
    html_url: str | None = None


class HumanFeedback(BaseModel):
    delivery_id: str
    repo: str
    number: int
    merged: bool  # merged: positive feedback; closed unmerged: negative
    branch: str | None = None
    proposal_id: str | None = None
    run_id: str | None = None
    actor: str | None = None
    created_at: datetime | None = None

    @property
    def positive(self) -> bool:
        return self.merged
