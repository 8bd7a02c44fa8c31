"""alerts: one row per firing condition, so each alert is sent once until it resolves

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 10:05:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

import services.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('rule', sa.String(length=32), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('opened_at', services.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen', services.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', services.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('notified', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_key_resolved', ['key', 'resolved_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_key_resolved')
    op.drop_table('alerts')
