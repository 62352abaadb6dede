# The MicroPython-side start-up of the emulated board: mount the flash folder as /, then boot.py/main.py.
from __future__ import annotations

# This text runs inside the MicroPython VM (not CPython), as `micropython -i <file>`: `-i` drops into the
# REPL after it returns, like a board does after main.py ends. It is kept as a string so that mypy and
# ruff (CPython tools) never try to check MicroPython-only modules such as `vfs`.
#
# Why a `machine` stand-in: the unix port's `machine` has no reset(); mpremote's `reset` command calls
# machine.reset(), which must make the supervisor restart the VM as a power cycle would.
VM_SCRIPT = r"""
import sys, os, vfs

def _hxemu_boot():
    flash = os.getenv('HXEMU_FLASH')
    out = os.getenv('HXEMU_OUT')
    vfs.mount(vfs.VfsPosix(flash), '/')
    # Host devices (the UART ptys) and the event/OLED output folder stay reachable under the flash root.
    vfs.mount(vfs.VfsPosix('/dev'), '/dev')
    if out:
        vfs.mount(vfs.VfsPosix(out), '/hx_out')
    os.chdir('/')
    # As on an ESP32: frozen modules (asyncio lives there on the unix port too), then /lib.
    sys.path[:] = ['', '.frozen', '/lib']
    import machine as _builtin

    class _Machine:
        pass

    m = _Machine()
    for name in dir(_builtin):
        if not name.startswith('__'):
            setattr(m, name, getattr(_builtin, name))

    def _marker(kind):
        # The supervisor watches the console for this marker, takes it out and restarts the VM: an exit
        # code cannot carry it, because the REPL swallows SystemExit.
        sys.stdout.write('\x00HXEMU:' + kind + '\x00')
        import time
        while True:
            time.sleep(1)

    def reset():
        _marker('hard')

    def soft_reset():
        _marker('soft')

    def unique_id():
        return b'\xe0\x5a\x1b\x00\x00\x01'

    # VfsPosix.rename() resolves both absolute paths into one shared buffer, so the old name is lost
    # (ENOENT) where a board's FAT/littlefs works. Relative paths pass through to the host untouched and
    # the VM's host working directory is the flash folder, so the stand-in `os` renames by host-relative
    # paths (HXEMU_OUT_REL is the output folder seen from the flash folder).
    import os as _builtin_os

    o = _Machine()
    for name in dir(_builtin_os):
        if not name.startswith('__'):
            setattr(o, name, getattr(_builtin_os, name))
    out_rel = os.getenv('HXEMU_OUT_REL')

    def _host(p):
        if not p.startswith('/'):
            return p
        if out_rel and (p == '/hx_out' or p.startswith('/hx_out/')):
            return out_rel + p[len('/hx_out'):]
        return p.lstrip('/') or '.'

    def rename(a, b):
        _builtin_os.rename(_host(a), _host(b))

    o.rename = rename
    sys.modules['os'] = o
    m.reset = reset
    m.soft_reset = soft_reset
    m.unique_id = unique_id
    sys.modules['machine'] = m
    files = ['boot.py']
    if os.getenv('HXEMU_MAIN') == '1':
        files.append('main.py')
    for f in files:
        try:
            os.stat(f)
        except OSError:
            continue
        try:
            exec(open(f).read(), {'__name__': '__main__', '__file__': '/' + f})
        except KeyboardInterrupt as e:
            sys.print_exception(e)
            break
        except SystemExit:
            raise
        except Exception as e:
            sys.print_exception(e)
            break

_hxemu_boot()
del _hxemu_boot
"""
