# Board selection: the only place that knows which board layer (unix host or ESP32) to import.


def load(name):
    if name == "unix":
        from hx.boards.unix import Board
    elif name in ("esp32", "esp32-devkitc", "esp32-cam-aithinker", "xiao-esp32s3-sense"):
        from hx.boards.esp32 import Board
    else:
        raise ValueError("unknown board %r" % name)
    return Board()
