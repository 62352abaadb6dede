# Persistence: the tables, the engine, driver-level SQL and the Alembic migrations.
