# `python -m tools.fresh` (make check-fresh): for each architecture, a Debian 13 root from the cached base,
# a clone of this repository in it, `make system-deps` + `make run` as a new user, then a demo code redeemed
# over REST and over MQTT. Run as root (debootstrap, chroot, mounts); everything it starts ends with it.
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from tools.fresh.plan import (
    ARCHES,
    SUITE,
    USER,
    Arch,
    Options,
    Result,
    base_name,
    host_arch,
    parse_args,
    report,
)
from tools.fresh.root import (
    build_base,
    chroot_cmd,
    emulation,
    last_line,
    mounted_under,
    mounts,
    say,
    sh,
    unmount_all,
)

HOME = f"/home/{USER}/hexiao"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_root(root: Path, tarball: Path) -> None:
    """An empty folder with the base unpacked; never deletes through a mount left by a killed run."""
    if root.exists():
        unmount_all(root)
        if mounted_under(root):
            raise RuntimeError(
                f"{root} still has mounts ({', '.join(mounted_under(root))}): unmount them first"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    sh(["tar", "-C", str(root), "--numeric-owner", "-xpf", str(tarball)], 600)


def remove_root(root: Path) -> None:
    if not mounted_under(root):  # rmtree through a /dev bind mount would wipe this machine's /dev
        shutil.rmtree(root, ignore_errors=True)


def prepare(root: Path, repo: Path, log: Path) -> dict[str, str]:
    """The network settings of this machine, a user, and a clone of the repository's HEAD."""
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    facts = {}
    # A network that inspects TLS (this workplace's) signs with its own CA: the root must trust it as the
    # host does, or pip cannot reach PyPI. A machine on an open network has none and skips this.
    cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if cas:
        for ca in cas:
            shutil.copy(ca, root / "usr/local/share/ca-certificates" / ca.name)
        sh(chroot_cmd(root, "update-ca-certificates"), 600, log)
        facts["local CAs trusted"] = str(len(cas))
    sh(chroot_cmd(root, f"id {USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {USER}"), 120, log)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    sh(["git", "clone", "-q", "--no-local", str(repo), str(root / HOME.lstrip("/"))], 600, log)
    sh(chroot_cmd(root, f"chown -R {USER}:{USER} {HOME}"), 600, log)
    facts["commit"] = head.stdout.strip()
    return facts


def pip_env(facts: dict[str, str]) -> dict[str, str]:
    """pip in the venv uses certifi's CAs, not the system's: point it at the system bundle when the root
    trusts local CAs (see prepare)."""
    return {"PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"} if "local CAs trusted" in facts else {}


def wait_health(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    t0 = time.monotonic()
    beat = t0
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
            if r.status == 200:
                return
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(
                f"make run exited {proc.returncode} before answering {url}; last lines:\n{tail}"
            )
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"no answer from {url} after {timeout:.0f} s; last line: {last_line(log)}")
        if time.monotonic() - beat >= 60:
            beat = time.monotonic()
            say(f"  ... make run: {beat - t0:.0f} s, no health answer yet; {last_line(log)}")
        time.sleep(1)


def banner_problems(text: str, http: str) -> list[str]:
    """What a person needs from make run's output: where the console, the API and the broker are."""
    want = {
        "console address": f"{http}/console",
        "health address": f"{http}/api/health",
        "MQTT broker line": "MQTT broker",
        "local token": "Local token",
        "demo codes": "HXDEMO-VIP-0001",
    }
    return [name for name, needle in want.items() if needle not in text]


def without_venv_problem(rc: int, output: str, venv_left: bool) -> str:
    """`make run` as a user before python3-venv is installed must stop, say what to install and leave no
    half-made .venv behind (a later run would otherwise skip making it). '' when it did all that."""
    if rc == 0:
        return "make run without python3-venv succeeded (was it installed already?)"
    if "python3-venv" not in output:
        return "make run without python3-venv did not say to install python3-venv"
    if venv_left:
        return "make run without python3-venv left a .venv behind"
    return ""


def run_arch(opts: Options, arch: Arch, repo: Path) -> Result:
    res = Result(arch.debian)
    foreign = arch.debian != host_arch()
    scale = opts.timeout_scale if foreign else 1.0
    opts.cache.mkdir(parents=True, exist_ok=True)
    tarball = (opts.cache / base_name(arch.debian)).resolve()
    root = (opts.cache / "roots" / arch.debian).resolve()
    log = opts.cache.resolve() / f"{arch.debian}-run.log"
    log.write_text("")
    res.facts["emulated"] = f"yes ({arch.qemu})" if foreign else "no"
    try:
        with contextlib.ExitStack() as st:
            if foreign:
                st.enter_context(emulation(arch))
            if tarball.exists():
                took = (
                    tarball.with_suffix(".seconds").read_text().strip()
                    if tarball.with_suffix(".seconds").exists()
                    else "?"
                )
                res.seconds["debootstrap"] = 0.0
                res.facts["base"] = f"cached (debootstrap took {took} s)"
                say(f"[{arch.debian}] base root from the cache: {tarball.name}")
            else:
                say(f"[{arch.debian}] debootstrap {SUITE} {arch.debian} (first run; cached for the next) ...")
                res.seconds["debootstrap"] = build_base(arch, tarball, opts.mirror, 1800 * scale)
                res.facts["base"] = "built now"
                say(f"[{arch.debian}] debootstrap done in {res.seconds['debootstrap']:.0f} s")
            t0 = time.monotonic()
            if not opts.keep:
                st.callback(remove_root, root)
            fresh_root(root, tarball)
            res.seconds["unpack"] = time.monotonic() - t0
            st.enter_context(mounts(root))
            res.facts.update(prepare(root, repo, log))
            say(
                f"[{arch.debian}] make run as {USER} before system-deps (must name python3-venv, leave no .venv) ..."
            )
            early = subprocess.run(
                chroot_cmd(root, f"cd {HOME} && make run", USER),
                capture_output=True,
                text=True,
                timeout=600 * scale,
            )
            with log.open("a") as f:
                f.write(
                    f"--- make run before system-deps (exit {early.returncode}) ---\n{early.stdout}{early.stderr}\n"
                )
            problem = without_venv_problem(
                early.returncode, early.stdout + early.stderr, (root / HOME.lstrip("/") / ".venv").exists()
            )
            if problem:
                raise RuntimeError(problem)
            res.facts["make run without python3-venv"] = "stops, names it, no .venv left"
            say(f"[{arch.debian}] make system-deps (as root: installs python3-venv and mosquitto) ...")
            t0 = time.monotonic()
            sh(chroot_cmd(root, f"cd {HOME} && make system-deps"), 900 * scale, log, what="make system-deps")
            res.seconds["system_deps"] = time.monotonic() - t0
            http_port, mqtt_port = free_port(), free_port()
            http = f"http://127.0.0.1:{http_port}"
            env = {"HTTP_PORT": str(http_port), "BROKER_PORT": str(mqtt_port), **pip_env(res.facts)}
            if foreign:
                # Byte-compiling every installed file is most of pip's time under qemu; a real board
                # compiles natively (and Python compiles what it imports on first use anyway).
                env["PIP_NO_COMPILE"] = "1"
                res.facts["pip under qemu"] = "PIP_NO_COMPILE=1"
            say(f"[{arch.debian}] make run as {USER} (venv, pip install, start; {http}) ...")
            out = st.enter_context(log.open("ab"))
            t0 = time.monotonic()
            proc = subprocess.Popen(
                chroot_cmd(root, f"cd {HOME} && exec make run", USER, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            wait_health(proc, f"{http}/api/health", log, 1800 * scale)
            res.seconds["run_to_health"] = time.monotonic() - t0
            say(f"[{arch.debian}] health answered after {res.seconds['run_to_health']:.0f} s; redeeming ...")
            probe = subprocess.run(
                chroot_cmd(
                    root,
                    f"cd {HOME} && .venv/bin/python -m tools.fresh.probe --http {http} "
                    f"--mqtt-port {mqtt_port}",
                    USER,
                ),
                capture_output=True,
                text=True,
                timeout=600 * scale,
            )
            if probe.returncode != 0:
                raise RuntimeError(f"redeeming failed: {(probe.stderr or probe.stdout).strip()[-800:]}")
            got = json.loads(probe.stdout.strip().splitlines()[-1])
            res.seconds["redeem_rest"], res.seconds["redeem_mqtt"] = got["rest_s"], got["mqtt_s"]
            res.facts["python"], res.facts["uname -m"] = got["python"], got["machine"]
            missing = banner_problems(log.read_text(errors="replace"), http)
            if missing:
                raise RuntimeError(f"make run's output does not tell: {', '.join(missing)} (see {log})")
            say(f"[{arch.debian}] redeemed over REST ({got['rest']}) and MQTT ({got['mqtt']})")
            res.ok = True
            os.killpg(proc.pid, signal.SIGINT)  # a clean stop; mounts() ends whatever is left
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
    except Exception as err:  # one architecture's failure is reported, and the next one still runs
        res.why = str(err)
        say(f"[{arch.debian}] FAILED: {err}")
    return res


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds every ExitStack: processes, mounts, binfmt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print(
            "!! make check-fresh needs root (debootstrap, chroot, mounts): sudo make check-fresh",
            file=sys.stderr,
        )
        return 2
    missing = [t for t in ("debootstrap", "chroot", "git", "tar") if shutil.which(t) is None]
    if missing:
        print(
            f"!! missing: {', '.join(missing)} (make check-fresh installs debootstrap and qemu-user-static)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    repo = Path(__file__).resolve().parents[2]
    results = [run_arch(opts, ARCHES[a], repo) for a in opts.arches]
    text = report(results)
    (opts.cache / "results.md").write_text(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{text}\n"
    )
    print("\n" + text, flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
