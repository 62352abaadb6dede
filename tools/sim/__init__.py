"""Device simulator: the real Hexiao firmware on the MicroPython unix port, driven from the host."""
