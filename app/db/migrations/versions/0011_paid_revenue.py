"""paid revenue: the dashboard's covering index carries what was paid; the email Stripe has

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 17:40:00

Revenue is what buyers paid (``COALESCE(amount_paid, amount)``: orders paid before 0010 have no
``amount_paid``), so ``ix_purchase_order_revenue`` gains ``amount_paid`` and the dashboard's
sum stays an index-only scan. ``user_account.stripe_customer_email`` is the email last sent to
the buyer's Stripe Customer; a checkout updates the Customer when the account's email differs
(NULL on Customers made before this revision: their next checkout sends it once).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD = ["status", "fulfilled_at", "currency", "amount"]


def upgrade() -> None:
    op.add_column("user_account", sa.Column("stripe_customer_email", sa.String(length=320), nullable=True))
    op.drop_index("ix_purchase_order_revenue", table_name="purchase_order")
    op.create_index("ix_purchase_order_revenue", "purchase_order", [*_OLD, "amount_paid"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_purchase_order_revenue", table_name="purchase_order")
    op.create_index("ix_purchase_order_revenue", "purchase_order", _OLD, unique=False)
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("stripe_customer_email")
