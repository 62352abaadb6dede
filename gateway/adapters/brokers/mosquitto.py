# Supervises a Mosquitto child process with a generated config (the gateway's embedded broker).
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway.adapters.brokers.mosquitto_conf import BrokerConf, TlsListener, render
from gateway.domain.errors import ConfigError

log = logging.getLogger(__name__)

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto broker we own: generated config (mosquitto_conf.render), persistence in `workdir`,
    restart on the same ports. `tls` adds the devices' TLS listener; `run_as` is the user it drops to
    when started by root (None: stays root, for directories only root can reach)."""

    def __init__(
        self,
        workdir: Path,
        port: int = 0,
        bind: str = "127.0.0.1",
        password_file: Path | None = None,
        acl_file: Path | None = None,
        binary: str | None = None,
        tls: TlsListener | None = None,
        run_as: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.bind = bind
        self.port = port or free_port(bind if bind != "0.0.0.0" else "127.0.0.1")
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.run_as = run_as
        self.binary = binary or find_mosquitto()
        if self.binary is None:
            raise ConfigError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind

    @property
    def tls_host(self) -> str:
        """Where this machine reaches the TLS listener."""
        bind = self.tls.bind if self.tls is not None else ""
        return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        user = self.run_as
        if user is None and hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root, Mosquitto drops to user `mosquitto` by default, which cannot reach a workdir under
            # an owner-only directory; without a `run_as` that can, it keeps our identity.
            user = "root"
        conf = BrokerConf(
            self.port, self.bind, self.workdir, self.password_file, self.acl_file, self.tls, user
        )
        self.conf_path.write_text(render(conf))

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if port_open(self.host, self.port) and not self._reap_orphan():
            raise ConfigError(
                f"port {self.port} on {self.bind} is already in use; set BROKER_PORT to a free port"
            )
        if self.tls is not None and port_open(self.tls_host, self.tls.port):
            raise ConfigError(
                f"port {self.tls.port} on {self.tls.bind} is already in use; set BROKER_TLS_PORT to a free port"
            )
        self.write_config()
        logf = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        assert self.binary is not None
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise ConfigError(f"mosquitto exited at start (code {self.proc.returncode}): {tail}")
            if port_open(self.host, self.port) and (
                self.tls is None or port_open(self.tls_host, self.tls.port)
            ):
                log.info("mosquitto listening on %s:%d (pid %d)", self.bind, self.port, self.proc.pid)
                if self.tls is not None:
                    log.info("mosquitto TLS listener for devices on %s:%d", self.tls.bind, self.tls.port)
                return
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"mosquitto did not open port {self.port} within {timeout:.0f} s")

    def _reap_orphan(self) -> bool:
        """Stop a broker of ours left running by a gateway that was killed (its pid file and our config
        on its command line prove it is ours); True when the port is free again. Anything else on the
        port is left alone."""
        pid_path = self.workdir / "mosquitto.pid"
        try:
            pid = int(pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return False
        if b"mosquitto" not in cmdline or str(self.conf_path).encode() not in cmdline:
            return False
        log.warning("stopping the broker a previous gateway left running (pid %d)", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and port_open(self.host, self.port):
            time.sleep(0.05)
        return not port_open(self.host, self.port)

    def reload(self) -> None:
        """Re-read password and ACL files (SIGHUP) without dropping connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.write_config()
            self.proc.send_signal(signal.SIGHUP)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
