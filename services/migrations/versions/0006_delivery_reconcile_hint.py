"""deliveries keep what a platform said about a post whose outcome is unknown

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 10:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no constraint): no table copy on SQLite.
    op.add_column('deliveries', sa.Column('reconcile_hint', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('reconcile_hint')
