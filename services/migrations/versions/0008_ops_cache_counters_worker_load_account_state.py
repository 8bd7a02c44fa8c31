"""ops: rendition cache hits/misses and encode time, worker load on the heartbeat, account upkeep warnings and quota

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

import services.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, or NOT NULL with a server default): no table copy on SQLite.
    # A rendition made before this revision counts as the one cache miss that encoded it.
    op.add_column('renditions', sa.Column('cache_hits', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('renditions', sa.Column('cache_misses', sa.Integer(), server_default='1', nullable=False))
    op.add_column('renditions', sa.Column('encode_seconds', sa.Float(), nullable=True))
    op.add_column('renditions', sa.Column('encoded_at', services.models.UTCDateTime(timezone=True), nullable=True))

    op.add_column('worker_heartbeats', sa.Column('load_1m', sa.Float(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('load_5m', sa.Float(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('load_15m', sa.Float(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('cpu_count', sa.Integer(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('rss_bytes', sa.BigInteger(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('tasks_active', sa.Integer(), nullable=True))
    op.add_column('worker_heartbeats', sa.Column('tasks_done', sa.BigInteger(), nullable=True))

    op.add_column('channel_accounts', sa.Column('upkeep_warnings', sa.JSON(), nullable=True))
    op.add_column('channel_accounts', sa.Column('upkeep_at', services.models.UTCDateTime(timezone=True), nullable=True))
    op.add_column('channel_accounts', sa.Column('quota', sa.JSON(), nullable=True))
    op.add_column('channel_accounts', sa.Column('quota_at', services.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('channel_accounts', schema=None) as batch_op:
        batch_op.drop_column('quota_at')
        batch_op.drop_column('quota')
        batch_op.drop_column('upkeep_at')
        batch_op.drop_column('upkeep_warnings')
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.drop_column('tasks_done')
        batch_op.drop_column('tasks_active')
        batch_op.drop_column('rss_bytes')
        batch_op.drop_column('cpu_count')
        batch_op.drop_column('load_15m')
        batch_op.drop_column('load_5m')
        batch_op.drop_column('load_1m')
    with op.batch_alter_table('renditions', schema=None) as batch_op:
        batch_op.drop_column('encoded_at')
        batch_op.drop_column('encode_seconds')
        batch_op.drop_column('cache_misses')
        batch_op.drop_column('cache_hits')
