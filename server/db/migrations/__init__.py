"""Alembic migrations of the Rollcall schema."""
