# Hole 2 at the registration edges: reserved device ids are refused over REST and by the fleet.
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.domain.errors import ValidationFailed
from gateway.services.device_auth import Credentials
from gateway.services.devices import DeviceIn


@pytest.mark.parametrize("device", ["web-api", "WEB-x", "revert", "System", "gateway", "console", "api"])
def test_hole_2_reserved_device_ids_are_refused_at_registration(device: str) -> None:
    """Hole 2: a device named like the ledger's people or system actors is refused when registered."""
    with pytest.raises(ValidationError, match="reserved"):
        DeviceIn(device=device, site="zoo")
    assert DeviceIn(device="webcam-1", site="zoo").device == "webcam-1"


def test_hole_2_the_fleet_refuses_reserved_ids(tmp_path: Path) -> None:
    """Hole 2: provisioning credentials for a reserved id is refused too."""
    e = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    migrate(e)
    creds = Credentials(SqlDatabase(e), None)
    with pytest.raises(ValidationFailed, match="reserved"):
        creds.issue("revert")
    creds.check_name("gate-1")
