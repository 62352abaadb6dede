# Small durable files on the device's flash: install id, boot counter and a one-file-per-entry directory store.
import os


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, data):
    # Write a temp file then rename over the target: a power cut leaves either the old or the new file.
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


IID_LEN = 6
_IID_BYTES = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def valid_iid(s):
    if not isinstance(s, str) or len(s) != IID_LEN:
        return False
    for b in s.encode():  # bytes, not characters (iterating a str interns them: protocol.py)
        if b not in _IID_BYTES:
            return False
    return True


def new_iid(rand):
    """IID_LEN letters/digits from the random source `rand(n) -> bytes` (about 36 bits), unbiased."""
    out = bytearray()
    while len(out) < IID_LEN:
        for b in rand(16):
            if b < 248 and len(out) < IID_LEN:  # 248 = 4 * 62: a multiple of the alphabet, no modulo bias
                out.append(_IID_BYTES[b % 62])
    return out.decode()


def _read_int(path):
    raw = _read(path)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def bump_boot(flash):
    """Increment and persist the boot counter before any scan of this boot; returns the new value."""
    n = (_read_int(flash + "/boot") or 0) + 1
    write_atomic(flash + "/boot", str(n).encode())
    return n


BOOT_LIMIT = 3  # boots in a row that never became stable: the next one stays in safe mode (hx.rescue)


def boot_attempt(flash):
    """Count this boot as one more that has not become stable yet; returns how many came before it.
    A flash that cannot even be written counts as none (the fault is reported by what fails next)."""
    n = _read_int(flash + "/bootfail") or 0
    try:
        write_atomic(flash + "/bootfail", str(n + 1).encode())
    except OSError:
        pass
    return n


def boot_stable(flash):
    """This boot made it (the app ran healthy for a while): the failed-boot count starts again."""
    try:
        os.remove(flash + "/bootfail")
    except OSError:
        pass


def boot_ids(flash, rand):
    """(install id, boot counter) for this boot; `rand(n) -> bytes` is the board's random source.

    The install id is made at the first boot and kept on flash. A flash erase removes it together with
    the boot counter, so the board comes back as a new install whose scan ids cannot repeat the old
    install's although its boot counter starts again from 1. A lost boot counter with the id still
    there is treated the same way (new id): an (install id, boot) pair must never come back.
    """
    iid = _read(flash + "/install")
    if _read_int(flash + "/boot") is None or not valid_iid(iid):
        # A first boot, an erased flash, or an upgrade from firmware without install ids (that keeps
        # its boot counter, so the new outbox entries still sort after the old ones).
        iid = new_iid(rand)
        write_atomic(flash + "/install", iid.encode())
    return iid, bump_boot(flash)


class DirStore:
    """Entries as files in one directory; names sort in insertion order (the caller picks them)."""

    def __init__(self, path):
        self.path = path
        if not _exists(path):
            os.mkdir(path)
        for name in [e[0] for e in os.ilistdir(path) if e[0].endswith(".tmp")]:
            if name.endswith(".tmp"):
                # An interrupted write: the entry was never acknowledged to the user as queued.
                os.remove(path + "/" + name)

    def names(self):
        """The entry names, in no particular order, one at a time (ilistdir: no list of them all)."""
        for e in os.ilistdir(self.path):
            if e[1] != 0x4000 and not e[0].endswith(".tmp"):
                yield e[0]

    def write(self, name, data):
        write_atomic(self.path + "/" + name, data)

    def read(self, name):
        with open(self.path + "/" + name, "rb") as f:
            return f.read()

    def remove(self, name):
        try:
            os.remove(self.path + "/" + name)
        except OSError:
            pass
