# Code the device needs only now and then (boot, set-up, a command): imported for one use, unloaded after.
import gc
import sys


def run(name, fn, *args):
    """Import module `name`, return `name.fn(*args)`, and unload the module again (also on an error).

    For a coroutine function the coroutine is returned: awaiting it still works (it holds its own
    code), and that code is freed once it has finished."""
    __import__(name)
    try:
        return getattr(sys.modules[name], fn)(*args)
    finally:
        unload(name)


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
