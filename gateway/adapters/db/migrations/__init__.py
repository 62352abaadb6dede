# Alembic migrations for the ledger.
