"""admin: append-only audit_log, reconcile runs, webhook rejection counts, indexes for the console

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:10:00

Ledger entries of kind ``adjustment`` need nothing here: ``ledger_entry.kind`` has no CHECK.
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", _BIGINT_ID, nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=True),
        sa.Column("after_json", sa.Text(), nullable=True),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_audit_log_actor_id_user_account"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False)
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False)
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_type", "subject_id", "id"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _PG_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)

    op.create_table(
        "reconcile_run",
        sa.Column("id", _BIGINT_ID, nullable=False),
        sa.Column("started_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("events_listed", sa.Integer(), nullable=False),
        sa.Column("replayed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("orders_checked", sa.Integer(), nullable=False),
        sa.Column("orders_fixed", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_run")),
    )
    op.create_index(op.f("ix_reconcile_run_finished_at"), "reconcile_run", ["finished_at"], unique=False)

    op.create_table(
        "webhook_rejection",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "reason", name=op.f("pk_webhook_rejection")),
    )

    op.create_index("ix_purchase_order_pack_id", "purchase_order", ["pack_id"], unique=False)
    op.create_index("ix_purchase_order_created_at", "purchase_order", ["created_at"], unique=False)
    op.create_index(
        "ix_purchase_order_revenue", "purchase_order", ["status", "fulfilled_at", "currency", "amount"], unique=False
    )
    op.create_index(op.f("ix_stripe_event_received_at"), "stripe_event", ["received_at"], unique=False)
    failed = sa.text("outcome LIKE 'failed: %'")
    op.create_index(
        "ix_stripe_event_failed", "stripe_event", ["received_at"], sqlite_where=failed, postgresql_where=failed
    )


def downgrade() -> None:
    op.drop_index("ix_stripe_event_failed", table_name="stripe_event")
    op.drop_index(op.f("ix_stripe_event_received_at"), table_name="stripe_event")
    op.drop_index("ix_purchase_order_revenue", table_name="purchase_order")
    op.drop_index("ix_purchase_order_created_at", table_name="purchase_order")
    op.drop_index("ix_purchase_order_pack_id", table_name="purchase_order")
    op.drop_table("webhook_rejection")
    op.drop_index(op.f("ix_reconcile_run_finished_at"), table_name="reconcile_run")
    op.drop_table("reconcile_run")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
