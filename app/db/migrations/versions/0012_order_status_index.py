"""order status index: drop ``ix_purchase_order_status``, a prefix of three other indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:30:00

Every lookup by status alone is served by ``ix_purchase_order_status_created`` (status first),
and every order that moves updates each index holding its status: the writer's status UPDATE
of a credited order kept five of them in step.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_purchase_order_status", table_name="purchase_order")


def downgrade() -> None:
    op.create_index("ix_purchase_order_status", "purchase_order", ["status"], unique=False)
