# A device's own network namespace: a veth pair to the host, a link we can cut, removed afterwards.
#
# Why here and not a proxy: the device's TCP connection must die the way it does on a real venue network
# (no FIN, no RST: the link just goes away), which only a real link can do. Needs root (CAP_NET_ADMIN).
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.sim.runner import FirmwareProcess


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Netns:
    name: str
    host_if: str  # the host's end of the veth pair: setting it down cuts the device off
    host_ip: str  # where the device reaches the broker
    device_ip: str

    def link(self, up: bool) -> None:
        _ip("link", "set", self.host_if, "up" if up else "down")


@contextmanager
def netns() -> Iterator[Netns]:
    """A fresh namespace `hxf<pid>` with lo up and a /30 veth link to the host (10.213.<n>.0/30)."""
    n = os.getpid() % 250 + 1
    ns = Netns(f"hxf{os.getpid()}", f"hxf{os.getpid()}h", f"10.213.{n}.1", f"10.213.{n}.2")
    peer = f"hxf{os.getpid()}d"
    _ip("netns", "add", ns.name)
    try:
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        inside = ["netns", "exec", ns.name, "ip"]
        _ip(*inside, "addr", "add", f"{ns.device_ip}/30", "dev", peer)
        _ip(*inside, "link", "set", peer, "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


class NetnsFirmware(FirmwareProcess):
    """The real firmware on the VM, run inside `ns` (`ip netns exec` execs it: same pid, same group)."""

    def __init__(self, workdir: Path, config: object, ns: Netns, **kw: object) -> None:
        super().__init__(workdir, config, **kw)  # type: ignore[arg-type]
        self.ns = ns

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns.name, *super().command()]
