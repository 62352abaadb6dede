# The end-to-end fixtures (simulated devices on the VM, the broker tap) for the UART fuzzer.
from tests.e2e.conftest import devices, tap  # noqa: F401 - fixtures, found by pytest by name
