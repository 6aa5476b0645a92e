"""inbox_events: an index of the open events (pending or processing) in id order, for the claim

The claim takes the oldest open events (ORDER BY id LIMIT n). Done events stay (their ids keep a resent event from
being processed twice), so the table only grows; without this index PostgreSQL may walk the primary key through the
whole history to find the few open ones (44 ms at 25,000 done events, and it grows with them).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    op.create_index('ix_inbox_open', 'inbox_events', ['id'], sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('ix_inbox_open', table_name='inbox_events')
