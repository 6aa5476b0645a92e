"""the model's suggested category beside the chosen one; who acknowledged a booking

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consultations') as batch_op:
        batch_op.add_column(sa.Column('suggested_category', sa.String(length=20), nullable=True))
    with op.batch_alter_table('bookings') as batch_op:
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bookings') as batch_op:
        batch_op.drop_column('acknowledged_by')
    with op.batch_alter_table('consultations') as batch_op:
        batch_op.drop_column('suggested_category')
