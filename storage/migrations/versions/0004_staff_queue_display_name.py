"""staff queue flag on conversations, LINE display name on users

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('staff_waiting_since', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_conversations_staff_waiting_since', ['staff_waiting_since'])
    with op.batch_alter_table('line_users') as batch:
        batch.add_column(sa.Column('display_name', sa.String(length=100), nullable=True))
    # Conversations already with staff are waiting for them.
    op.execute("UPDATE conversations SET staff_waiting_since = updated_at WHERE state = 'with_staff'")


def downgrade() -> None:
    with op.batch_alter_table('line_users') as batch:
        batch.drop_column('display_name')
    with op.batch_alter_table('conversations') as batch:
        batch.drop_index('ix_conversations_staff_waiting_since')
        batch.drop_column('staff_waiting_since')
