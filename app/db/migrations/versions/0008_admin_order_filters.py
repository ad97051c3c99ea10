"""admin order filters: composite indexes so the console's list counts and pages from an index

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:15:00

Measured with bench/admin_bench.py (100,000 orders): a week of one pack's paid orders took
210 ms to count and 57 ms to list with ``ix_purchase_order_pack_id``; 0.2 ms and 0.5 ms with
these. The single-column pack index is covered by ``ix_purchase_order_pack_created``.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_purchase_order_pack_id", table_name="purchase_order")
    op.create_index("ix_purchase_order_status_created", "purchase_order", ["status", "created_at"], unique=False)
    op.create_index(
        "ix_purchase_order_status_pack_created", "purchase_order", ["status", "pack_id", "created_at"], unique=False
    )
    op.create_index("ix_purchase_order_pack_created", "purchase_order", ["pack_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_purchase_order_pack_created", table_name="purchase_order")
    op.drop_index("ix_purchase_order_status_pack_created", table_name="purchase_order")
    op.drop_index("ix_purchase_order_status_created", table_name="purchase_order")
    op.create_index("ix_purchase_order_pack_id", "purchase_order", ["pack_id"], unique=False)
