"""popup days

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('popup_days',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=20), nullable=False),
    sa.Column('venue', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('coordinator_id', sa.String(length=40), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('popup_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_popup_days_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_popup_days_start_at'), ['start_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('popup_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_popup_days_start_at'))
        batch_op.drop_index(batch_op.f('ix_popup_days_region'))

    op.drop_table('popup_days')
