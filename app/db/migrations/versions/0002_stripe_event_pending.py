"""stripe_event.pending_payment_intent_id: refunds and disputes that arrive before the credit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        with op.batch_alter_table("stripe_event", schema=None) as batch_op:
            batch_op.add_column(sa.Column("pending_payment_intent_id", sa.String(length=255), nullable=True))
            batch_op.create_index(
                batch_op.f("ix_stripe_event_pending_payment_intent_id"),
                ["pending_payment_intent_id"],
                unique=False,
            )


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        with op.batch_alter_table("stripe_event", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_stripe_event_pending_payment_intent_id"))
            batch_op.drop_column("pending_payment_intent_id")
