"""USB provisioning for Hexiao scanners: flash MicroPython, install the firmware, register, verify."""
