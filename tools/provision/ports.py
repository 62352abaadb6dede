# Serial ports and what is probably on them, guessed from the USB bridge's VID:PID.
from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

# USB-serial bridges found on ESP32 boards. A guess only: the same chips sit on many other gadgets.
KNOWN: dict[tuple[int, int], str] = {
    (0x10C4, 0xEA60): "CP210x USB-UART (ESP32-DevKitC, most ESP32 boards)",
    (0x1A86, 0x7523): "CH340 USB-UART (cheap ESP32 boards)",
    (0x1A86, 0x55D4): "CH9102 USB-UART (newer ESP32 boards)",
    (0x0403, 0x6001): "FTDI FT232R USB-UART",
    (0x303A, 0x1001): "ESP32-S3/C3 native USB (USB-Serial/JTAG)",
}


@dataclass(frozen=True)
class Port:
    device: str
    vid: int | None
    pid: int | None
    description: str
    guess: str

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else "-"

    @property
    def likely_esp32(self) -> bool:
        return self.guess != ""


def guess(vid: int | None, pid: int | None) -> str:
    if vid is None or pid is None:
        return ""
    return KNOWN.get((vid, pid), "")


def list_serial_ports() -> list[Port]:
    found = []
    for p in list_ports.comports():
        found.append(Port(p.device, p.vid, p.pid, p.description or "", guess(p.vid, p.pid)))
    # Likely boards first, then by name.
    return sorted(found, key=lambda p: (not p.likely_esp32, p.device))
