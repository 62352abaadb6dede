# The emulated board against the real mpremote: raw REPL, files, run, soft and hard reset, interrupting main.py.
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tools.emuboard.board import EmuBoard


@pytest.fixture
def board(tmp_path: Path) -> Iterator[EmuBoard]:
    b = EmuBoard(tmp_path / "flash", out=tmp_path / "out", heap="512K").start()
    # Settled: the power-on boot (empty flash) reached the REPL before the test writes any file.
    wait_for(lambda: b">>> " in b.transcript, 15, "REPL prompt after power-on")
    try:
        yield b
    finally:
        b.stop()


def mpremote(board: EmuBoard, *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", board.port, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, (args, res.stdout, res.stderr, board.transcript[-2000:])
    return res.stdout


def test_exec_and_files(board: EmuBoard, tmp_path: Path) -> None:
    assert mpremote(board, "exec", "print(6 * 7)").strip() == "42"
    src = tmp_path / "hello.py"
    src.write_text("print('hello from flash')\n")
    mpremote(board, "fs", "cp", str(src), ":hello.py")
    assert (board.flash / "hello.py").read_text() == src.read_text()  # the folder is the flash
    assert "hello.py" in mpremote(board, "fs", "ls")
    assert mpremote(board, "fs", "cat", ":hello.py") == "print('hello from flash')\n"
    assert mpremote(board, "exec", "import hello").strip() == "hello from flash"
    mpremote(board, "fs", "mkdir", ":lib")
    back = tmp_path / "back.py"
    mpremote(board, "fs", "cp", ":hello.py", str(back))
    assert back.read_text() == src.read_text()
    assert mpremote(board, "run", str(src)).strip() == "hello from flash"
    # Files live under the flash folder only: "/" inside the VM is that folder.
    assert mpremote(board, "exec", "import os; print(sorted(os.listdir('/')))").strip().startswith("[")
    assert not Path("/hello.py").exists()


def test_soft_reset_runs_boot_and_restarts_the_vm(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "boot.py").write_text("f = open('/boots', 'a')\nf.write('b')\nf.close()\n")
    boots = flash / "boots"

    def count() -> int:
        return len(boots.read_text()) if boots.exists() else 0

    with EmuBoard(flash) as board:
        wait_for(lambda: count() == 1, 15, "boot.py at power-on")
        pid = board.vm_pid()
        mpremote(board, "exec", "pass")
        assert board.vm_pid() != pid  # mpremote's soft reset really restarted the VM ...
        assert count() == 2  # ... and it ran boot.py
        mpremote(board, "exec", "import builtins; builtins.marker = 1")
        out = mpremote(board, "soft-reset", "exec", "import builtins; print(hasattr(builtins, 'marker'))")
        assert out.strip() == "False"  # state is gone after a soft reset, as on a board
        assert count() == 4
        assert board.resets[0] == "power-on" and board.resets.count("soft") == 3


def test_hard_reset_runs_main(board: EmuBoard) -> None:
    (board.flash / "main.py").write_text("open('/main-ran', 'w').write('yes')\n")
    mpremote(board, "reset")
    wait_for(lambda: (board.flash / "main-ran").exists(), 15, "main.py after a hard reset")
    assert "hard" in board.resets


def test_a_looping_main_is_interrupted_by_mpremote(board: EmuBoard) -> None:
    (board.flash / "main.py").write_text(
        "import time\nopen('/looping', 'w').write('1')\nwhile True:\n    time.sleep(0.05)\n"
    )
    mpremote(board, "reset")
    wait_for(lambda: (board.flash / "looping").exists(), 15, "main.py looping")
    # mpremote sends Ctrl-C (KeyboardInterrupt in main.py), then enters the raw REPL.
    assert mpremote(board, "exec", "print('got in')").strip() == "got in"
    assert b"KeyboardInterrupt" in bytes(board.transcript)


def test_machine_reset_from_code_restarts(board: EmuBoard) -> None:
    (board.flash / "main.py").write_text(
        "import os\n"
        "n = len([f for f in os.listdir('/') if f.startswith('run-')])\n"
        "open('/run-%d' % n, 'w').write('x')\n"
        "if n == 0:\n"
        "    import machine\n"
        "    machine.reset()\n"
    )
    mpremote(board, "reset")
    wait_for(lambda: (board.flash / "run-1").exists(), 15, "second boot after machine.reset()")


def test_uart_and_output_folders_are_reachable(tmp_path: Path) -> None:
    import os
    import tty

    m, s = os.openpty()
    tty.setraw(s)  # a UART passes bytes untouched
    uart = os.ttyname(s)
    b = EmuBoard(tmp_path / "flash", uart=uart, out=tmp_path / "out").start()
    try:
        code = (
            "import os\n"
            "f = open(os.getenv('HX_UART'), 'wb')\n"
            "f.write(b'ping\\r\\n')\n"
            "f.close()\n"
            "open(os.getenv('HX_OUT') + '/x.tmp', 'w').write('1')\n"
            "os.rename(os.getenv('HX_OUT') + '/x.tmp', os.getenv('HX_OUT') + '/x')\n"
            "open('/a.tmp', 'w').write('2')\n"
            "os.rename('/a.tmp', '/a')\n"
            "print(os.getenv('HX_BOARD'), os.getenv('HX_FLASH'))\n"
        )
        assert mpremote(b, "exec", code).strip() == "unix /"
        assert os.read(m, 100) == b"ping\r\n"
        assert (tmp_path / "out" / "x").read_text() == "1"
        assert (tmp_path / "flash" / "a").read_text() == "2"
    finally:
        b.stop()
        os.close(m)
        os.close(s)


def test_command_line_board_scans_typed_codes_and_stops_on_sigterm(tmp_path: Path) -> None:
    import json
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.emuboard", "--flash", str(tmp_path / "f"), "--scanner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())
        assert info["port"].startswith("/dev/pts/") and info["uart"].startswith("/dev/pts/")
        # A line typed on stdin reaches the board's scanner UART as the GM65 sends it: code + CR LF.
        proc.stdin.write("HX-TYPED\n")
        proc.stdin.flush()
        code = (
            "import os, time\n"
            "f = open(os.getenv('HX_UART'), 'rb')\n"
            "buf = b''\n"
            "t = time.time()\n"
            "while not buf.endswith(b'\\n') and time.time() - t < 20:\n"
            "    d = f.read(16)\n"
            "    if d:\n"
            "        buf += d\n"
            "    else:\n"
            "        time.sleep(0.05)\n"
            "print(buf)\n"
        )
        board = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", info["port"], "exec", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert board.stdout.strip() == "b'HX-TYPED\\r\\n'", board.stdout + board.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
