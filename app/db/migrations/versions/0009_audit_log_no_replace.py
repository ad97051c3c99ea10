"""audit log: SQLite also refuses an insert that reuses a row's id (INSERT OR REPLACE)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:50:00

``INSERT OR REPLACE`` (or ``REPLACE INTO``) deletes the row it collides with without firing
``audit_log_no_delete``: SQLite runs DELETE triggers for REPLACE only with
``recursive_triggers`` on, which it is not. This trigger refuses such an insert before it
happens. PostgreSQL needs nothing: ``ON CONFLICT DO UPDATE`` fires its UPDATE trigger.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
            "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_replace")
