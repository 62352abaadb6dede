# The firmware's seams stay explicit: who may import whom, and the one unload helper (docs/firmware.md "Seams").
from __future__ import annotations

import ast
import re
from pathlib import Path

HX = Path(__file__).resolve().parents[2] / "firmware" / "hx"


def _imports(path: Path) -> set[str]:
    """Modules a firmware file imports (top-level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _sources() -> list[Path]:
    return sorted(HX.rglob("*.py"))


def test_only_the_board_layer_touches_hardware() -> None:
    for path in _sources():
        if path.parent.name == "boards":
            continue
        hw = {m for m in _imports(path) if m.split(".")[0] in ("machine", "network", "termios")}
        assert not hw, f"{path.name} imports {hw}: hardware belongs to hx/boards"


def test_lazily_loaded_modules_import_nothing_of_their_loader() -> None:
    assert not {m for m in _imports(HX / "hand.py") if m.startswith("hx.ui")}, (
        "hand.py must not import the UI"
    )
    assert not {m for m in _imports(HX / "gm65_setup.py") if m.startswith("hx.gm65")}, (
        "set-up must not import gm65"
    )


def test_no_private_state_across_modules() -> None:
    # obj._name where obj is not self: reaching into another object's private state.
    reach = re.compile(r"\b(?!self\b)[a-z_][a-z0-9_]*\._[a-z]\w*")
    for path in _sources():
        hits = [ln for ln in path.read_text().splitlines() if reach.search(ln.split("#")[0])]
        assert not hits, f"{path.name}: {hits}"


def test_unloading_lives_in_one_helper() -> None:
    for path in _sources():
        if path.name == "lazy.py":
            continue
        text = path.read_text()
        assert "sys.modules" not in text and "delattr(" not in text, (
            f"{path.name} unloads by hand: use hx.lazy"
        )
    main = (HX.parent / "main.py").read_text()
    assert "sys.modules" not in main and "lazy.unload(" in main
