"""installation: a random id naming this database, for the idempotency keys sent to Stripe

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:30:00

"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("installation_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    # Made here, once per database: a copy made later by a fresh migration gets its own.
    op.bulk_insert(table, [{"id": 1, "installation_id": secrets.token_hex(8)}])


def downgrade() -> None:
    op.drop_table("installation")
