# A migrated SQLite database per test, as the unit of work the services are handed (SqlDatabase).
from __future__ import annotations

from pathlib import Path

import pytest

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase


@pytest.fixture
def db(tmp_path: Path) -> SqlDatabase:
    e = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(e)
    return SqlDatabase(e)
