"""outbound messages: a reply in doubt, one message per reply token

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Earlier versions gave a booking confirmation the reply token of the event's own replies; the later
    # message pushes instead (LINE would have refused the used token anyway).
    op.execute("UPDATE outbound_messages SET reply_token = NULL, reply_until = NULL WHERE reply_token IS NOT NULL "
               "AND id > (SELECT MIN(o.id) FROM outbound_messages o WHERE o.reply_token = outbound_messages.reply_token)")
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_in_doubt', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ux_outbound_reply_token', ['reply_token'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ux_outbound_reply_token')
        batch_op.drop_column('reply_in_doubt')
