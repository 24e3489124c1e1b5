"""Who may see what: the scope rules of the contract.

A DSL sees its own school's notifications; a worker their caseload (notifications addressed to them);
a team user its team's; a manager the partnership's. Anything out of scope is answered exactly as if it
did not exist (404). The scopes are the store's to apply (``AccountStore.visible_notification``: as query filters
in ``pipeline.adapters.notifications``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.domain.model import CASELOAD_ROLES, SCHOOL_ROLES, Role

if TYPE_CHECKING:
    from pipeline.ports.accounts import AccountStore
    from pipeline.ports.records import NotificationRecord as Notification
    from pipeline.ports.records import UserRecord as User

NOTIFICATION_READERS = {Role.DSL, Role.WORKER, Role.TEAM, Role.MANAGER}


def may_acknowledge(user: User, row: Notification) -> bool:
    """Only the recipients themselves acknowledge (a manager watches; it does not acknowledge for them)."""
    if user.role == Role.DSL:
        return row.recipient_role in SCHOOL_ROLES and row.school_urn == user.school_urn
    if user.role == Role.WORKER:
        return row.recipient_ref == user.email and row.recipient_role in CASELOAD_ROLES
    if user.role == Role.TEAM:
        return row.recipient_role == user.team
    return False


def visible_notification(port: AccountStore, user: User, notification_id: str) -> Notification | None:
    """The notification if this user may see it; None when it does not exist or is out of scope alike."""
    return port.visible_notification(user, notification_id)
