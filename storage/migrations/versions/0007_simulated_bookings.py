"""simulated bookings in a namespace of their own

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('pending', 'confirmed')")


def upgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('simulated', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    # Bookings made before this were all taken as real; those of simulator users become simulated.
    op.execute("UPDATE bookings SET simulated = true WHERE user_id LIKE 'sim-%'")
    op.drop_index('uq_booking_active_slot', table_name='bookings')
    op.create_index('uq_booking_active_slot', 'bookings', ['coordinator_id', 'start', 'simulated'], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    op.drop_index('uq_booking_active_slot', table_name='bookings')
    # Without their namespace simulated bookings could collide with real ones in the old index: they go.
    op.execute("DELETE FROM bookings WHERE simulated")
    op.create_index('uq_booking_active_slot', 'bookings', ['coordinator_id', 'start'], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_column('simulated')
