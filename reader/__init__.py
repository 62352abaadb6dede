# The Linux reader: the firmware's pure core (firmware/hx) under CPython with a Linux board layer.
