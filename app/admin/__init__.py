"""The admin console under ``/admin``: access, layout, audit log, dashboard, orders and their actions.

Every handler listed in ``app.admin.routes.ADMIN_HANDLERS`` is mounted behind the admin guard
(``app.admin.access``); every change an admin makes writes an ``audit_log`` row in the same
transaction (``app.admin.audit``).
"""
