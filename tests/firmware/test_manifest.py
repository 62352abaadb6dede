# firmware/manifest.py freezes the whole hx package (and nothing the filesystem must keep).
from __future__ import annotations

from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def test_manifest_freezes_hx_with_the_ports_own_modules() -> None:
    calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def rec(name: str):  # the manifest functions MicroPython's build provides
        return lambda *a, **k: calls.append((name, a, k))

    exec(
        (FIRMWARE / "manifest.py").read_text(),
        {n: rec(n) for n in ("include", "package", "module", "freeze")},
    )
    assert ("include", ("$(PORT_DIR)/boards/manifest.py",), {}) in calls
    assert ("package", ("hx",), {"opt": 3}) in calls
    assert not [c for c in calls if c[0] in ("module", "freeze")], "boot.py/main.py stay on the filesystem"
    assert (FIRMWARE / "hx" / "__init__.py").exists() and (
        FIRMWARE / "hx" / "boards" / "__init__.py"
    ).exists()
