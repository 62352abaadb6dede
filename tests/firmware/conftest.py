# pytest setup for the firmware tests: the MicroPython-side files in mp/ are run by the VM, not collected.
collect_ignore_glob = ["mp/*"]
