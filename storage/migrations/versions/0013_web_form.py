"""web_submissions: the web consultation form's posts (double posts, rate limit, the consent given)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_submissions',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('key', sa.String(length=64), nullable=False, unique=True),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('consultation_id', sa.Integer(), sa.ForeignKey('consultations.id'), nullable=False),
        sa.Column('consent_version', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_web_submission_address_at', 'web_submissions', ['address', 'created_at'])


def downgrade() -> None:
    op.drop_table('web_submissions')
