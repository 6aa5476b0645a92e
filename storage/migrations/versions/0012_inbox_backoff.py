"""inbox events: back-off between attempts, and who handled a parked one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox_events') as batch:
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('handled_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbox_events') as batch:
        batch.drop_column('handled_by')
        batch.drop_column('next_attempt_at')
