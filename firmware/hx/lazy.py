# Code the device needs only now and then (boot, set-up, a command): imported for one use, unloaded after.
import gc
import sys


def unload(name):
    """Forget module `name` (e.g. "hx.config") so the collector can free its bytecode."""
    if name in sys.modules:
        del sys.modules[name]
    if "." in name:
        pkg, attr = name.rsplit(".", 1)
        parent = sys.modules.get(pkg)
        if parent is not None and hasattr(parent, attr):
            delattr(parent, attr)  # `import a.b` also binds b on a: that reference would keep it alive
    gc.collect()


class use:
    """`with lazy.use("hx.commands") as commands: ...`: the module is imported on entry and unloaded
    on exit, also when the body raises. Only the body may hold the module."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        __import__(self.name)
        return sys.modules[self.name]

    def __exit__(self, *exc):
        unload(self.name)
        return False
