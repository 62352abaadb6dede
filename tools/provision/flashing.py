# Puts MicroPython on a blank ESP32 with esptool: check the image, detect the chip, erase, write.
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.provision.errors import FirmwareError, PortError

# Where MicroPython's combined image goes: after the ROM's reserved first 4 KiB on the original ESP32
# and the S2, at 0 on the newer chips (MicroPython's own download page gives the same offsets).
OFFSETS = {
    "esp32": 0x1000,
    "esp32s2": 0x1000,
    "esp32s3": 0x0,
    "esp32c3": 0x0,
    "esp32c6": 0x0,
    "esp32c2": 0x0,
    "esp32h2": 0x0,
}
# The chip id in the image's extended header (bytes 12-13), so a wrong image is refused before writing.
IMAGE_CHIP_IDS = {
    0: "esp32",
    2: "esp32s2",
    5: "esp32c3",
    9: "esp32s3",
    12: "esp32c2",
    13: "esp32c6",
    16: "esp32h2",
}
ESP_IMAGE_MAGIC = 0xE9


@dataclass(frozen=True)
class Image:
    path: Path
    size: int
    chip: str | None  # from the header; None when it names a chip we do not know


def check_image(path: Path) -> Image:
    if not path.is_file():
        raise FirmwareError(
            f"firmware file {path} not found",
            "download the MicroPython .bin for your board from micropython.org and name it here",
        )
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[0] != ESP_IMAGE_MAGIC:
        raise FirmwareError(
            f"{path.name} is not an ESP32 firmware image",
            "use the .bin file (not .uf2, .hex or .zip) from MicroPython's ESP32 download page",
        )
    chip_id = int.from_bytes(head[12:14], "little")
    return Image(path, path.stat().st_size, IMAGE_CHIP_IDS.get(chip_id))


def chip_family(text: str) -> str | None:
    """'ESP32-D0WD-V3' -> 'esp32', 'ESP32-S3' -> 'esp32s3', from esptool's output."""
    m = re.search(
        r"(?:Chip type:|Chip is|Detecting chip type\.*|Connected to)\s*(ESP32(?:-[A-Z0-9]+)*)", text
    )
    if m is None:
        return None
    name = m.group(1).upper()
    for fam in ("S2", "S3", "C2", "C3", "C6", "H2"):
        if name.startswith(f"ESP32-{fam}"):
            return "esp32" + fam.lower()
    return "esp32"


def esptool_error(res: subprocess.CompletedProcess[str]) -> str:
    """The line of esptool's output that says what went wrong."""
    lines = (res.stderr + "\n" + res.stdout).strip().splitlines()
    for line in lines:
        if "fatal error" in line.lower() or line.startswith("ERROR"):
            return line.split("A fatal error occurred:", 1)[-1].replace("ERROR:", "").strip()
    return lines[-1] if lines else "no answer"


def esptool(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esptool", *args], capture_output=True, text=True, timeout=timeout
    )


def detect_chip(port: str) -> str:
    res = esptool("--port", port, "--after", "no-reset", "chip-id", timeout=60)
    fam = chip_family(res.stdout + res.stderr)
    if res.returncode != 0 or fam is None:
        raise PortError(
            f"no ESP32 bootloader answered on {port}: {esptool_error(res)}",
            "hold the BOOT button while plugging in (or press BOOT+EN), then try again",
        )
    return fam


def plan(image: Image, chip: str, port: str, baud: int, erase: bool) -> list[list[str]]:
    """The esptool command lines `flash` runs, in order."""
    if image.chip is not None and image.chip != chip:
        raise FirmwareError(
            f"{image.path.name} is built for {image.chip} but the board is {chip}",
            f"download the MicroPython image for {chip.upper()}",
        )
    offset = OFFSETS.get(chip)
    if offset is None:
        raise FirmwareError(f"chip {chip} is not supported by this tool")
    steps = []
    if erase:
        steps.append(["--chip", chip, "--port", port, "--baud", str(baud), "erase-flash"])
    steps.append(
        ["--chip", chip, "--port", port, "--baud", str(baud), "write-flash", hex(offset), str(image.path)]
    )
    return steps
