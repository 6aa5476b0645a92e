"""bookings: the calendar's refusal for good (calendar_error), which leaves a pending booking to staff

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_error', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('calendar_error_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_column('calendar_error_at')
        batch_op.drop_column('calendar_error')
