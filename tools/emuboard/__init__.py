"""An emulated MicroPython board for tests and demos: the real VM behind a pty speaking the raw REPL."""
