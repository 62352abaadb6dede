# Firmware tests: MicroPython-side tests live in mp/, these pytest modules run them on the real VM.
