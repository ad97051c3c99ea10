"""``/admin/audit``: the audit log, newest first, filtered by action or subject."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.accounts.account_page import format_when
from app.accounts.models import User
from app.admin.models import AuditEntry
from app.admin.pages import admin_page
from app.admin.paging import PageNumber, paginate
from app.web.transactions import READ_ONLY_OPT

Filter = Annotated[str | None, Parameter(max_length=255)]


@get("/audit", name="admin:audit", opt={READ_ONLY_OPT: True})
async def audit_log(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    action: Filter = None,
    subject_type: Filter = None,
    subject_id: Filter = None,
    page: PageNumber = 1,
) -> Template:
    query = select(AuditEntry, User.email).join(User, User.id == AuditEntry.actor_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if subject_type:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        query = query.where(AuditEntry.subject_id == subject_id)
    found = await paginate(db_session, query.order_by(AuditEntry.id.desc()), page, scalars=False)
    locale = i18n.current_locale()
    rows = [
        {"entry": e, "actor": email, "when": format_when(e.created_at, locale)} for e, email in found.items
    ]
    filters = {"action": action or "", "subject_type": subject_type or "", "subject_id": subject_id or ""}
    return admin_page(
        request, "audit.html", {"rows": rows, "page": found, "filters": filters}, section="admin:audit"
    )


ROUTES: list[Any] = [audit_log]
