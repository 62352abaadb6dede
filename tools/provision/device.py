# Talks to the board over USB with the real mpremote: identify it, upload files, read/write config, reset.
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.provision.errors import DeviceError

INFO = (
    "import sys, json\n"
    "print('HXINFO' + json.dumps({'impl': sys.implementation.name, "
    "'version': '.'.join(str(v) for v in sys.implementation.version[:3]), "
    "'machine': getattr(sys.implementation, '_machine', '?'), 'platform': sys.platform}))\n"
)

# Removes the old firmware package so no stale .py shadows a new .mpy (MicroPython prefers .py).
# The outbox and the boot counter stay: re-provisioning must never lose a scan still waiting. The
# failed-boot count goes (a board in safe mode boots normally again once provisioned), and so do
# over-the-air update slots (they would shadow the firmware just installed). A running
# watchdog needs nothing here: the firmware gives the REPL 10 minutes when mpremote interrupts it.
REMOVE_APP = (
    "import os\n"
    "def _rm(p):\n"
    "    try:\n"
    "        st = os.stat(p)\n"
    "    except OSError:\n"
    "        return\n"
    "    if st[0] & 0x4000:\n"
    "        for n in os.listdir(p):\n"
    "            _rm(p + '/' + n)\n"
    "        os.rmdir(p)\n"
    "    else:\n"
    "        os.remove(p)\n"
    "_rm('/hx')\n"
    "_rm('/main.py')\n"
    "_rm('/bootfail')\n"
    "_rm('/slots')\n"
)


class Device:
    """One board on `port`. Every call is one `mpremote` run; output is captured, never echoed, because
    a config file holds the device's secrets."""

    def __init__(self, port: str, timeout: float = 120.0) -> None:
        self.port = port
        self.timeout = timeout

    def mpremote(self, *args: str) -> str:
        cmd = [sys.executable, "-m", "mpremote", "connect", self.port, *args]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as err:
            raise DeviceError(
                f"the device on {self.port} did not answer within {self.timeout:.0f} s",
                "unplug and replug the board, then try again; close any other program using the port",
            ) from err
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            hint = "is this a MicroPython board? flash MicroPython first: python -m tools.provision flash"
            if "could not enter raw repl" in (res.stderr + res.stdout):
                hint = "the board does not answer like MicroPython; flash it first (tools.provision flash)"
            elif "No such file" in tail[0] or "could not open port" in tail[0]:
                hint = "check the port name with: python -m tools.provision ports"
            raise DeviceError(f"mpremote failed on {self.port}: {tail[0]}", hint)
        return res.stdout

    def info(self) -> dict[str, Any]:
        out = self.mpremote("exec", INFO)
        for line in out.splitlines():
            if line.startswith("HXINFO"):
                doc: dict[str, Any] = json.loads(line[len("HXINFO") :])
                return doc
        raise DeviceError(f"unexpected answer from the device on {self.port}")

    def read_file(self, remote: str) -> bytes | None:
        """The file's bytes, or None when the device has no such file."""
        probe = f"import os\ntry:\n    os.stat({remote!r})\n    print('HXYES')\nexcept OSError:\n    print('HXNO')\n"
        if "HXYES" not in self.mpremote("exec", probe):
            return None
        with tempfile.TemporaryDirectory(prefix="hxprov-") as tmp:
            local = Path(tmp) / "file"
            self.mpremote("fs", "cp", ":" + remote, str(local))
            return local.read_bytes()

    def write_file(self, data: bytes, remote: str) -> None:
        """Write `data` to the device via a private temporary file that is removed right after."""
        with tempfile.TemporaryDirectory(prefix="hxprov-") as tmp:
            local = Path(tmp) / Path(remote).name
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                self.mpremote("fs", "cp", str(local), ":" + remote)
            finally:
                with contextlib.suppress(OSError):
                    local.unlink()

    def install_tree(self, staging: Path) -> None:
        """Replace the firmware with the files in `staging` (main.py, boot.py, hx/...), in one session."""
        args: list[str] = ["exec", REMOVE_APP]
        for item in sorted(staging.iterdir()):
            args += ["+", "fs", "cp"]
            if item.is_dir():
                args += ["-r", str(item), ":"]
            else:
                args += [str(item), ":" + item.name]
        self.mpremote(*args)

    def reset(self) -> None:
        """Hard reset: the board boots the new firmware (main.py) as after a power cycle."""
        self.mpremote("reset")
