"""Alembic migrations of the procedures database, applied by ``liaison procedures migrate``."""
