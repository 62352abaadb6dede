# Runs before main.py on the device: keep it empty of app logic so a bad app cannot block USB access.
import gc

gc.collect()
