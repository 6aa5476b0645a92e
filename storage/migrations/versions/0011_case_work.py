"""case work (history, notes, referrals, assignment), activity records and their photos

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.add_column(sa.Column('coordinator_id', sa.String(length=40), nullable=True))
        batch.create_index('ix_consultations_coordinator_id', ['coordinator_id'])
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('coordinator_id', sa.String(length=40), nullable=True))

    op.create_table(
        'case_events',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('consultation_id', sa.Integer(), sa.ForeignKey('consultations.id'), nullable=False),
        sa.Column('at', WHEN, nullable=False),
        sa.Column('who', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('field', sa.String(length=40), nullable=True),
        sa.Column('old', sa.Text(), nullable=True),
        sa.Column('new', sa.Text(), nullable=True),
    )
    op.create_index('ix_case_event_consultation', 'case_events', ['consultation_id', 'at'])

    op.create_table(
        'case_notes',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('consultation_id', sa.Integer(), sa.ForeignKey('consultations.id'), nullable=False),
        sa.Column('at', WHEN, nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
    )
    op.create_index('ix_case_note_consultation', 'case_notes', ['consultation_id', 'at'])

    op.create_table(
        'referrals',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('consultation_id', sa.Integer(), sa.ForeignKey('consultations.id'), nullable=False),
        sa.Column('partner_id', sa.String(length=40), nullable=False),
        sa.Column('referred_at', WHEN, nullable=False),
        sa.Column('referred_by', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('outcome_note', sa.Text(), nullable=True),
        sa.Column('updated_at', WHEN, nullable=False),
    )
    op.create_index('ix_referrals_consultation_id', 'referrals', ['consultation_id'])
    op.create_index('ix_referrals_partner_id', 'referrals', ['partner_id'])
    op.create_index('ix_referrals_referred_at', 'referrals', ['referred_at'])

    op.create_table(
        'activities',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('date', WHEN, nullable=False),
        sa.Column('coordinator_id', sa.String(length=40), nullable=True),
        sa.Column('company', sa.String(length=200), nullable=True),
        sa.Column('consultation_id', sa.Integer(), sa.ForeignKey('consultations.id'), nullable=True),
        sa.Column('partner_id', sa.String(length=40), nullable=True),
        sa.Column('session_no', sa.Integer(), nullable=True),
        sa.Column('topics', sa.Text(), nullable=True),
        sa.Column('attendees', sa.Integer(), nullable=True),
        sa.Column('model_stage', sa.String(length=16), nullable=True),
        sa.Column('notes', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('updated_at', WHEN, nullable=False),
    )
    op.create_index('ix_activity_kind_date', 'activities', ['kind', 'date'])
    op.create_index('ix_activities_date', 'activities', ['date'])
    op.create_index('ix_activities_coordinator_id', 'activities', ['coordinator_id'])
    op.create_index('ix_activities_consultation_id', 'activities', ['consultation_id'])

    op.create_table(
        'activity_photos',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('activity_id', sa.Integer(), sa.ForeignKey('activities.id'), nullable=False),
        sa.Column('stored_name', sa.String(length=80), nullable=False, unique=True),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('uploaded_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
    )
    op.create_index('ix_activity_photos_activity_id', 'activity_photos', ['activity_id'])


def downgrade() -> None:
    op.drop_table('activity_photos')
    op.drop_table('activities')
    op.drop_table('referrals')
    op.drop_table('case_notes')
    op.drop_table('case_events')
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('coordinator_id')
    with op.batch_alter_table('consultations') as batch:
        batch.drop_index('ix_consultations_coordinator_id')
        batch.drop_column('coordinator_id')
