"""stripe customers: a buyer's one Stripe Customer; what a paid order's session actually charged

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:40:00

``user_account.stripe_customer_id`` is set once, by a conditional UPDATE (``... WHERE
stripe_customer_id IS NULL``), and uniquely indexed so two buyers can never share one Customer.
The order's ``amount`` stays the catalogue snapshot (the subtotal Stripe must charge before
discounts and tax); ``amount_discount``, ``amount_tax`` and ``amount_paid`` are what the paid
session said (NULL on orders paid before this revision: read as no discount, no tax, ``amount``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN and a unique index: no table rebuild on SQLite.
    op.add_column("user_account", sa.Column("stripe_customer_id", sa.String(length=255), nullable=True))
    op.create_index(
        op.f("ix_user_account_stripe_customer_id"), "user_account", ["stripe_customer_id"], unique=True
    )
    for column in ("amount_discount", "amount_tax", "amount_paid"):
        op.add_column("purchase_order", sa.Column(column, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("purchase_order") as batch:
        batch.drop_column("amount_paid")
        batch.drop_column("amount_tax")
        batch.drop_column("amount_discount")
    op.drop_index(op.f("ix_user_account_stripe_customer_id"), table_name="user_account")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("stripe_customer_id")
