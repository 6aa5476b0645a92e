"""Persistence: SQLAlchemy models, the unit of work, Alembic migrations and report queries."""
