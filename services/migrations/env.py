"""Alembic environment: runs migrations on the URL given by services.migrations.upgrade()."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from services.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Web, workers and beat may all start at once: one migrates, the rest wait.
                connection.execute(text("SELECT pg_advisory_xact_lock(727070)"))
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
