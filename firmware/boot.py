# Runs before main.py on the device. First the relay: its GPIO floats from reset until something drives
# it, so it is driven to "open" here before anything else (hardware/wiring.md: the pull-down holds it
# until then). Nothing of the app runs here, so a bad app cannot block USB access.
import gc


def _relay_open(path):
    try:
        import json

        import machine

        with open(path) as f:
            r = json.load(f).get("relay")
        if r:
            machine.Pin(r["pin"], machine.Pin.OUT, value=0 if r.get("active_high", True) else 1)
    except Exception as e:  # no /board.json, no machine.Pin (host VM): main.py reports what is wrong
        print("boot: relay not driven:", repr(e))


_relay_open(globals().get("BOARD_JSON", "/board.json"))  # BOARD_JSON: set only by the tests
del _relay_open
gc.collect()
