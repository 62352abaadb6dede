# End-to-end tests: real gateway + real Mosquitto + the real firmware on the MicroPython VM.
