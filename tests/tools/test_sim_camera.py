"""The simulator's camera: `show` renders the order's QR into what the unix board's camera reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.adapters.camera.decode import decode, gray_from_file
from tools.sim.common import SimError
from tools.sim.fleet import Fleet


def test_show_and_hide_over_the_control_commands(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "sim", devices=["cam-1"], camera=True)
    try:
        dev = fleet["cam-1"]
        folder = Path(dev.env()["HX_CAMERA"])
        assert decode(gray_from_file(str(folder / "none.jpg"))).texts == ()
        resp = fleet.handle({"cmd": "show", "device": "cam-1", "code": "HXO-SIM-1"})
        assert resp["jpeg_bytes"] > 1000
        # What the board will send is a realistic shot the gateway reads (tilt, blur, noise, glare, JPEG).
        assert decode(gray_from_file(str(folder / "scene.jpg"))).texts == ("HXO-SIM-1",)
        fleet.handle({"cmd": "hide", "device": "cam-1"})
        assert not (folder / "scene.jpg").exists()
        with pytest.raises(SimError, match="1..128"):
            fleet.handle({"cmd": "show", "device": "cam-1", "code": ""})
    finally:
        fleet.close()


def test_a_uart_board_has_no_camera_to_show_to(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "sim", devices=["dev-1"])
    try:
        assert "HX_CAMERA" not in fleet["dev-1"].env()
        with pytest.raises(SimError, match="not a camera board"):
            fleet.handle({"cmd": "show", "device": "dev-1", "code": "X"})
    finally:
        fleet.close()
