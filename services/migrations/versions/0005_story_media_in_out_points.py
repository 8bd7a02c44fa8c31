"""story media carry an editor's video in/out points

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 07:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no constraint): no table copy on SQLite.
    op.add_column('story_media', sa.Column('in_point', sa.Float(), nullable=True))
    op.add_column('story_media', sa.Column('out_point', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('story_media', schema=None) as batch_op:
        batch_op.drop_column('out_point')
        batch_op.drop_column('in_point')
