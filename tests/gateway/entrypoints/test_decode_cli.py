"""`hexiao-decode`, the installed console script: files in, one JSON list per file; --stdin line by line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tools.camera.synth import Scene, jpeg, render


def _exe() -> str:
    found = shutil.which("hexiao-decode", path=str(Path(sys.executable).parent))
    assert found, "hexiao-decode is declared in pyproject.toml and installed with the package"
    return found


def _frames(tmp: Path) -> list[Path]:
    a = tmp / "a.png"
    Image.fromarray(render(Scene(text="HXO-CLI-1"))).save(a)
    b = tmp / "b.jpg"
    b.write_bytes(jpeg(render(Scene(text="HXO-CLI-2", width=640, height=480, ppm=7)), 30))
    c = tmp / "none.png"
    Image.fromarray(render(Scene(text=""))).save(c)
    two = tmp / "two.png"
    Image.fromarray(np.hstack([render(Scene(text="X-1", ppm=4)), render(Scene(text="X-2", ppm=4))])).save(two)
    return [a, b, c, two]


def test_files_give_one_json_list_each(tmp_path: Path) -> None:
    paths = _frames(tmp_path)
    out = subprocess.run([_exe(), *map(str, paths)], capture_output=True, text=True, timeout=60, check=True)
    lists = [json.loads(line) for line in out.stdout.splitlines()]
    assert lists[:3] == [["HXO-CLI-1"], ["HXO-CLI-2"], []]
    assert sorted(lists[3]) == ["X-1", "X-2"]


def test_stdin_answers_each_line_before_the_next_is_sent(tmp_path: Path) -> None:
    paths = _frames(tmp_path)
    p = subprocess.Popen([_exe(), "--stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdin is not None and p.stdout is not None
    try:
        for path, want in [(paths[0], ["HXO-CLI-1"]), (paths[2], []), (paths[1], ["HXO-CLI-2"])]:
            p.stdin.write(f"{path}\n")
            p.stdin.flush()
            assert json.loads(p.stdout.readline()) == want  # would hang without a flush per line
        p.stdin.write(f"{tmp_path / 'missing.png'}\n")
        p.stdin.flush()
        assert json.loads(p.stdout.readline()) == []
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 2  # an unreadable file is reported (stderr) and in the exit status


def test_no_arguments_is_a_usage_error() -> None:
    out = subprocess.run([_exe()], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--stdin" in out.stderr
