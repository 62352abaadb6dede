# Small durable files on the device's flash: the boot counter and a one-file-per-entry directory store.
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


def bump_boot(flash):
    """Increment and persist the boot counter before any scan of this boot; returns the new value."""
    path = flash + "/boot"
    n = 0
    try:
        with open(path) as f:
            n = int(f.read().strip())
    except (OSError, ValueError):
        n = 0
    n += 1
    write_atomic(path, str(n).encode())
    return n


class DirStore:
    """Entries as files in one directory; names sort in insertion order (the caller picks them)."""

    def __init__(self, path):
        self.path = path
        if not _exists(path):
            os.mkdir(path)
        for name in os.listdir(path):
            if name.endswith(".tmp"):
                # An interrupted write: the entry was never acknowledged to the user as queued.
                os.remove(path + "/" + name)

    def names(self):
        return sorted(n for n in os.listdir(self.path) if not n.endswith(".tmp"))

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
