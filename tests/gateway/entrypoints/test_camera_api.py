# Support access to camera frames: kept only for devices in CAMERA_DEBUG, readable only by an owner.
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user, issue_api_token
from tests.conftest import GatewayProc
from tests.gateway.adapters.test_camera_flow import CameraPeer
from tests.helpers import wait_for
from tools.camera.synth import Scene, jpeg, render


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[GatewayProc, Mosquitto, dict[str, str]]]:
    broker = Mosquitto(workdir=tmp_path / "broker")
    broker.start()
    env = {"CAMERA_DEBUG": "cam-9", "CAMERA_DEBUG_KEEP": "2"}
    g = GatewayProc(broker.url, tmp_path / "c.db", tmp_path / "var", env=env).start()
    e = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    create_user(SqlDatabase(e), "mia", "a-long-password", "manager")
    tokens = {
        "owner": issue_api_token(SqlDatabase(e), "boss"),
        "manager": issue_api_token(SqlDatabase(e), "mia"),
    }
    e.dispose()
    yield g, broker, tokens
    g.stop()
    broker.stop()


def test_only_the_debug_devices_last_unread_frames_are_kept_and_only_owners_see_them(
    gw: tuple[GatewayProc, Mosquitto, dict[str, str]],
) -> None:
    g, broker, t = gw
    owner = {"Authorization": f"Bearer {t['owner']}"}
    shots = [jpeg(render(Scene(text="", seed=i)), 40) for i in range(3)]
    cams = [CameraPeer(broker.url, "cam-9"), CameraPeer(broker.url, "cam-8")]
    try:
        for i, shot in enumerate(shots):
            cams[0].frame(f"d-{i}", i, shot)
            wait_for(lambda i=i: any(h["sid"] == f"d-{i}" for h in cams[0].hints), 30, f"hint {i}")
        cams[1].frame("x-1", 0, shots[0])
        wait_for(lambda: cams[1].hints, 30, "cam-8's hint")
    finally:
        for c in cams:
            c.close()
    r = g.api("GET", "/api/camera/cam-9/failures", headers=owner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["debug"] is True
    assert [(it["sid"], it["fmt"]) for it in body["items"]] == [
        ("d-1", "jpeg"),
        ("d-2", "jpeg"),
    ]  # the last 2
    img = g.api("GET", "/api/camera/cam-9/failures/1", headers=owner)
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content == shots[2]
    assert g.api("GET", "/api/camera/cam-9/failures/2", headers=owner).status_code == 404
    other = g.api("GET", "/api/camera/cam-8/failures", headers=owner).json()
    assert (other["debug"], other["items"]) == (False, [])  # never kept for a device not in debug
    manager = {"Authorization": f"Bearer {t['manager']}"}
    assert g.api("GET", "/api/camera/cam-9/failures", headers=manager).status_code == 403
    assert g.api("GET", "/api/camera/cam-9/failures", local=False).status_code == 401  # anonymous
    assert g.api("GET", "/api/health").json()["camera"]["kept_for_debug"] == 2
