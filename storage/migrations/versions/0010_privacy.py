"""audit_log and deletion_requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('who', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('record', sa.String(length=80), nullable=False),
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_who_at', 'audit_log', ['who', 'at'])

    op.create_table(
        'deletion_requests',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_by', sa.String(length=64), nullable=True),
        sa.Column('notice_id', sa.Integer(), nullable=True),
    )
    op.create_index('ix_deletion_requests_user_id', 'deletion_requests', ['user_id'])
    op.create_index('ix_deletion_requests_status', 'deletion_requests', ['status'])


def downgrade() -> None:
    op.drop_table('deletion_requests')
    op.drop_table('audit_log')
