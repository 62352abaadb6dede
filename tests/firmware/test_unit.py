# Runs every MicroPython unit-test module (tests/firmware/mp/test_*.py) on the real VM, one pytest case each.
from __future__ import annotations

import pytest

from tests.firmware.mpvm import MICROPYTHON, MP_DIR, counts, run_mp

MODULES = sorted(p.stem for p in MP_DIR.glob("test_*.py"))


def test_vm_is_micropython() -> None:
    out = run_mp(MP_DIR / "runner.py", "nonexistent_module")
    assert "micropython" in MICROPYTHON.name
    # A module that cannot be imported is a failure, and the runner says so with a non-zero exit.
    assert counts(out.stdout) == (0, 1)
    assert out.returncode == 1


@pytest.mark.parametrize("module", MODULES)
def test_module_on_vm(module: str) -> None:
    out = run_mp(MP_DIR / "runner.py", module)
    passed, failed = counts(out.stdout)
    assert failed == 0 and out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert passed > 0
