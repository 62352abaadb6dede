# A Debian root in a folder: its cached base, its mounts, foreign-CPU emulation and every process in it,
# each undone on the way out (an ExitStack: success, failure, Ctrl-C or SIGTERM alike).
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tools.fresh.plan import PREREQS, SUITE, Arch

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def say(msg: str) -> None:
    print(f">> {time.strftime('%H:%M:%S')} {msg}", flush=True)


def sh(cmd: list[str], timeout: float, log: Path | None = None, what: str = "") -> None:
    """Run a command to its end, its output to `log` (or ours); a failure raises with the log's tail.
    With `what`, a line every minute says it is still going (and the log's last line)."""
    t0 = time.monotonic()
    with contextlib.ExitStack() as st:
        out = st.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None)
        st.callback(_kill_if_running, proc)
        while proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(60)
            waited = time.monotonic() - t0
            if proc.poll() is None and waited > timeout:
                raise RuntimeError(f"{what or cmd[0]}: no end after {timeout:.0f} s (see {log})")
            if proc.poll() is None and what:
                say(f"  ... {what}: {waited:.0f} s; {last_line(log)}")
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log is not None else ""
        raise RuntimeError(
            f"{what or ' '.join(cmd[:4])} exited {proc.returncode}"
            + (f"; last lines of {log}:\n{tail}" if tail else "")
        )


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def last_line(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 2000))
        lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    return lines[-1][-160:] if lines else ""


def build_base(arch: Arch, tarball: Path, mirror: str, timeout: float) -> float:
    """debootstrap a minbase root with the prerequisites and pack it; returns the seconds it took."""
    work = tarball.with_suffix(".work")
    shutil.rmtree(work, ignore_errors=True)
    log = tarball.with_suffix(".debootstrap.log")
    log.unlink(missing_ok=True)
    t0 = time.monotonic()
    try:
        sh(
            [
                "debootstrap",
                f"--arch={arch.debian}",
                "--variant=minbase",
                f"--include={','.join(PREREQS)}",
                SUITE,
                str(work),
                mirror,
            ],
            timeout,
            log,
            what=f"debootstrap {SUITE} {arch.debian}",
        )
        took = time.monotonic() - t0
        (work / "var/cache/apt/archives").mkdir(parents=True, exist_ok=True)
        for deb in (work / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        sh(["tar", "-C", str(work), "--numeric-owner", "-cpf", str(tarball) + ".part", "."], timeout)
        os.replace(str(tarball) + ".part", tarball)
        tarball.with_suffix(".seconds").write_text(f"{took:.1f}\n")
        return took
    finally:
        shutil.rmtree(work, ignore_errors=True)


def processes_in(root: Path) -> list[int]:
    """Every process whose root directory is `root` (make, the gateway, Mosquitto, pip, qemu ...)."""
    want = os.path.realpath(root)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/root") == want:
                    found.append(int(entry))
    return found


def end_processes(root: Path, grace: float = 10.0) -> int:
    """SIGTERM everything inside the root, SIGKILL what is left after `grace` seconds; returns how many."""
    pids = processes_in(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and processes_in(root):
            time.sleep(0.2)
        if not processes_in(root):
            break
        pids = processes_in(root)
    return len(pids)


def mounted_under(root: Path) -> list[str]:
    want = os.path.realpath(root)
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if p == want or p.startswith(want + "/")]


def unmount_all(root: Path) -> None:
    """Deepest first; a busy one is detached lazily so the folder can still be removed."""
    for point in sorted(mounted_under(root), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def mounts(root: Path) -> Iterator[None]:
    """/proc, /sys and /dev (with /dev/pts and /dev/shm) inside the root; processes first, then mounts."""
    try:
        sh(["mount", "-t", "proc", "proc", str(root / "proc")], 30)
        sh(["mount", "--rbind", "/sys", str(root / "sys")], 30)
        sh(["mount", "--make-rslave", str(root / "sys")], 30)
        sh(["mount", "--rbind", "/dev", str(root / "dev")], 30)
        sh(["mount", "--make-rslave", str(root / "dev")], 30)
        yield
    finally:
        n = end_processes(root)
        if n:
            say(f"ended {n} process(es) left in {root}")
        unmount_all(root)


def binfmt_status(arch: Arch) -> str:
    """'' when this kernel can run `arch`'s programs now; otherwise why not, in a sentence."""
    if not BINFMT.joinpath("status").exists():
        return f"binfmt_misc is not mounted at {BINFMT}"
    entry = BINFMT / arch.qemu.removesuffix("-static")
    if entry.exists() and entry.read_text().startswith("enabled"):
        return ""
    return f"no enabled binfmt_misc entry {entry}"


@contextlib.contextmanager
def emulation(arch: Arch) -> Iterator[None]:
    """Register Debian's qemu-user-static for `arch` with binfmt_misc (mounting it first if need be),
    and undo exactly what was done here. Raises with what was tried when the kernel refuses."""
    qemu = shutil.which(arch.qemu) or f"/usr/bin/{arch.qemu}"
    if not Path(qemu).exists():
        raise RuntimeError(
            f"{arch.qemu} is missing: apt-get install qemu-user-static (make check-fresh does)"
        )
    tried: list[str] = []
    mounted = registered = False
    try:
        if not BINFMT.joinpath("status").exists():
            r = subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True
            )
            tried.append(
                f"mount -t binfmt_misc binfmt_misc {BINFMT}: "
                + ("ok" if r.returncode == 0 else r.stderr.strip() or f"exit {r.returncode}")
            )
            mounted = r.returncode == 0
        entry = BINFMT / arch.qemu.removesuffix("-static")
        if BINFMT.joinpath("register").exists() and not entry.exists():
            from tools.fresh.plan import binfmt_rule

            try:
                BINFMT.joinpath("register").write_bytes(binfmt_rule(arch, qemu))
                registered = True
                tried.append(f"registered {entry.name} -> {qemu} (flags FP)")
            except OSError as err:
                tried.append(f"writing {BINFMT / 'register'}: {err}")
        why = binfmt_status(arch)
        if why:
            raise RuntimeError(
                f"cannot run {arch.debian} programs here: {why}. Tried: " + "; ".join(tried or ["nothing"])
            )
        if tried:
            say("binfmt_misc: " + "; ".join(tried))
        yield
    finally:
        if registered:
            with contextlib.suppress(OSError):
                (BINFMT / arch.qemu.removesuffix("-static")).write_text("-1")
        if mounted:
            subprocess.run(["umount", str(BINFMT)], capture_output=True)


def chroot_cmd(
    root: Path, script: str, user: str | None = None, env: dict[str, str] | None = None
) -> list[str]:
    """A bash script run inside the root with a clean environment (none of this machine's settings)."""
    base = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "HOME": f"/home/{user}" if user else "/root",
        "USER": user or "root",
    }
    base.update(env or {})
    spec = [f"--userspec={user}:{user}"] if user else []
    return [
        "chroot",
        *spec,
        str(root),
        "/usr/bin/env",
        "-i",
        *[f"{k}={v}" for k, v in base.items()],
        "/bin/bash",
        "-c",
        script,
    ]
