"""story versions link to a campaign (label variable `project`); slots without a series are explicit schedules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:55:05.080644
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.alter_column('series_id', existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_slots_created_by_id_users'), 'users', ['created_by_id'], ['id'])

    # Plain ADD COLUMN, not a batch table copy: on SQLite a copy drops story_versions, and with
    # foreign keys on that would cascade into story_media and signatures.
    op.add_column('story_versions', sa.Column('project', sa.String(length=128), nullable=False,
                                              server_default=''))
    if op.get_bind().dialect.name == "sqlite":  # SQLite takes an inline REFERENCES on ADD COLUMN
        op.execute("ALTER TABLE story_versions ADD COLUMN campaign_id INTEGER "
                   "CONSTRAINT fk_story_versions_campaign_id_campaigns REFERENCES campaigns (id)")
    else:
        op.add_column('story_versions', sa.Column('campaign_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_story_versions_campaign_id_campaigns', 'story_versions', 'campaigns',
                              ['campaign_id'], ['id'])
    op.create_index('ix_story_versions_campaign_id', 'story_versions', ['campaign_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_story_versions_campaign_id', table_name='story_versions')
    op.drop_column('story_versions', 'campaign_id')
    op.drop_column('story_versions', 'project')
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_slots_created_by_id_users'), type_='foreignkey')
        batch_op.alter_column('series_id', existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('account_ids')
