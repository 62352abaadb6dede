# Tiny MicroPython test runner: runs test_* functions (sync or async), prints "N passed, N failed".
import asyncio
import os
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
if _here not in sys.path:
    sys.path.insert(0, _here)
import t  # noqa: E402  (puts the firmware on sys.path)


def run_module(name, counts):
    try:
        mod = __import__(name)
    except Exception as e:  # a module that does not even import counts as one failure
        counts[1] += 1
        print("FAIL %s: import: %r" % (name, e))
        sys.print_exception(e)
        return
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        try:
            res = fn()
            if hasattr(res, "send"):  # a coroutine: give it a fresh event loop
                asyncio.run(res)
                asyncio.new_event_loop()
            counts[0] += 1
            print("ok   %s.%s" % (name, attr))
        except Exception as e:
            counts[1] += 1
            print("FAIL %s.%s: %r" % (name, attr, e))
            sys.print_exception(e)


def main(argv):
    names = argv or sorted(n[:-3] for n in os.listdir(_here) if n.startswith("test_") and n.endswith(".py"))
    counts = [0, 0]
    for name in names:
        run_module(name, counts)
    print("%d passed, %d failed" % (counts[0], counts[1]))
    t.cleanup()
    sys.exit(1 if counts[1] or not counts[0] else 0)


main(sys.argv[1:])
