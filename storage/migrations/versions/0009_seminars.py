"""seminars, registrations, survey responses, multicasts; consultations.origin

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa



revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

LIVE = sa.text("status IN ('registered', 'waiting', 'attended')")


def upgrade() -> None:
    with op.batch_alter_table('consultations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_consultations_origin', ['origin'])
    # Everything before this came through the LINE intake's menu (or the simulator's, which is the same).
    op.execute("UPDATE consultations SET origin = 'menu' WHERE origin IS NULL")

    op.create_table(
        'seminars',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('venue', sa.String(length=200), nullable=True),
        sa.Column('venue_address', sa.String(length=300), nullable=True),
        sa.Column('map_url', sa.String(length=500), nullable=True),
        sa.Column('online_url', sa.String(length=500), nullable=True),
        sa.Column('onsite_seats', sa.Integer(), nullable=False),
        sa.Column('online_seats', sa.Integer(), nullable=False),
        sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('subsidy_briefing', sa.Boolean(), nullable=False),
        sa.Column('survey_id', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_seminars_start_at', 'seminars', ['start_at'])

    op.create_table(
        'seminar_registrations',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('seminar_id', sa.Integer(), sa.ForeignKey('seminars.id'), nullable=False),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('line_users.id'), nullable=False),
        sa.Column('mode', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('company', sa.String(length=200), nullable=True),
        sa.Column('contact_name', sa.String(length=100), nullable=True),
        sa.Column('simulated', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('checkin_token', sa.String(length=64), nullable=False, unique=True),
        sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attended_by', sa.String(length=64), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancelled_by', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_seminar_registrations_user_id', 'seminar_registrations', ['user_id'])
    op.create_index('ix_registration_seminar_status', 'seminar_registrations', ['seminar_id', 'status', 'mode', 'id'])
    op.create_index('uq_registration_live', 'seminar_registrations', ['seminar_id', 'user_id'], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)

    op.create_table(
        'survey_responses',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('seminar_id', sa.Integer(), sa.ForeignKey('seminars.id'), nullable=False),
        sa.Column('survey_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('line_users.id'), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_survey_responses_user_id', 'survey_responses', ['user_id'])
    op.create_index('uq_survey_response', 'survey_responses', ['seminar_id', 'user_id'], unique=True)

    op.create_table(
        'multicasts',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('key', sa.String(length=200), nullable=False, unique=True),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('ref', sa.String(length=64), nullable=False),
        sa.Column('recipients', sa.JSON(), nullable=False),
        sa.Column('messages', sa.JSON(), nullable=False),
        sa.Column('retry_key', sa.String(length=36), nullable=False, unique=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_multicasts_ref', 'multicasts', ['ref'])
    op.create_index('ix_multicast_status_next', 'multicasts', ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_table('multicasts')
    op.drop_table('survey_responses')
    op.drop_table('seminar_registrations')
    op.drop_table('seminars')
    with op.batch_alter_table('consultations', schema=None) as batch_op:
        batch_op.drop_index('ix_consultations_origin')
        batch_op.drop_column('origin')
