# Installs a bundle with the firmware's own hx.ota on the VM: `micropython ota_install.py <firmware dir>
# <flash> <bundle dir> <key hex>`; the files come from the bundle dir in chunks (the transport stand-in).
# Prints OK <slot> or ERR <why>.
import asyncio
import binascii
import sys

FW, FLASH, BUNDLE, KEY = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, FW)

from hx import ota  # noqa: E402

chunks = [0]


async def fetch(path, off, n):
    chunks[0] += 1
    with open(BUNDLE + "/" + path, "rb") as f:
        f.seek(off)
        return f.read(n)


with open(BUNDLE + "/manifest.json", "rb") as f:
    raw = f.read()
with open(BUNDLE + "/manifest.sig") as f:
    sig = f.read().strip()
try:
    slot = asyncio.run(ota.install(FLASH, raw, sig, binascii.unhexlify(KEY), fetch))
    print("OK", slot, chunks[0])
except ota.OtaError as e:
    print("ERR", e.args[0])
