# Whom our Mosquitto runs as when the gateway is root: Debian's `mosquitto` user, if it can reach its files.
from __future__ import annotations

import logging
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BROKER_USER = "mosquitto"


@dataclass(frozen=True)
class RunAs:
    user: str
    uid: int
    gid: int

    @property
    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid


def can_traverse(mode: int, owner: int, group: int, uid: int, gids: set[int]) -> bool:
    """Pure: may `uid` (in `gids`) pass through a directory with this mode and ownership."""
    if uid == owner:
        return bool(mode & stat.S_IXUSR)
    if group in gids:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def broker_identity(var_dir: Path) -> RunAs | None:
    """As root: the `mosquitto` user, with `var_dir/mosquitto` handed to it and `var_dir` opened to its
    group for traversal only (no listing, nothing else readable: files there are 0600). None when not
    root, when the user does not exist, or when a directory above `var_dir` shuts it out (then Mosquitto
    stays root and a warning says which directory to open)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(BROKER_USER)
    except KeyError:
        log.warning("no %r user on this machine: our Mosquitto runs as root", BROKER_USER)
        return None
    gids = {pw.pw_gid, *os.getgrouplist(BROKER_USER, pw.pw_gid)}
    var = Path(var_dir).resolve()
    for parent in reversed(var.parents):
        st = parent.stat()
        if not can_traverse(st.st_mode, st.st_uid, st.st_gid, pw.pw_uid, gids):
            log.warning(
                "user %r cannot pass through %s (mode %o): our Mosquitto runs as root; put VAR_DIR where "
                "it can (e.g. /var/lib/hexiao) or `chmod o+x %s`",
                BROKER_USER, parent, stat.S_IMODE(st.st_mode), parent,
            )  # fmt: skip
            return None
    st = var.stat()
    if not can_traverse(st.st_mode, st.st_uid, st.st_gid, pw.pw_uid, gids):
        os.chown(var, -1, pw.pw_gid)
        var.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXGRP)
    workdir = var / "mosquitto"
    workdir.mkdir(mode=0o700, exist_ok=True)
    for path in [workdir, *workdir.iterdir()]:
        os.chown(path, pw.pw_uid, pw.pw_gid)
    workdir.chmod(0o700)
    return RunAs(BROKER_USER, pw.pw_uid, pw.pw_gid)
