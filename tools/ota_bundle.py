"""Make an over-the-air update bundle from a firmware build: manifest + HMAC-SHA256 signature.

The manifest lists every file of the `hx` package (`.mpy`) with its size and SHA-256 and the version;
`manifest.sig` is the hex HMAC-SHA256 of the manifest's exact bytes under the device's OTA key (the
device checks it, then every file, before it switches: firmware/hx/ota.py).
Run: `python -m tools.ota_bundle --build build/firmware --version 0.2.0 --key-hex <hex> --out build/ota`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
from pathlib import Path


def make_bundle(build: Path, version: str, key: bytes) -> tuple[bytes, str]:
    """(manifest bytes, hex signature) for the hx package in `build`."""
    files = {}
    for p in sorted((build / "hx").rglob("*")):
        if p.is_file() and p.suffix in (".mpy", ".py"):
            data = p.read_bytes()
            files[p.relative_to(build).as_posix()] = {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
    if not files:
        raise SystemExit(f"no hx package in {build}: run python -m tools.build_firmware first")
    raw = json.dumps({"version": version, "files": files}, sort_keys=True, separators=(",", ":")).encode()
    return raw, hmac.new(key, raw, hashlib.sha256).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=Path("build/firmware"))
    ap.add_argument("--version", required=True)
    ap.add_argument("--key-hex", required=True, help="the devices' OTA key, hex")
    ap.add_argument("--out", type=Path, default=Path("build/ota"))
    args = ap.parse_args(argv)
    raw, sig = make_bundle(args.build, args.version, bytes.fromhex(args.key_hex))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_bytes(raw)
    (args.out / "manifest.sig").write_text(sig + "\n")
    print(f"bundle {args.version}: {len(json.loads(raw)['files'])} files, manifest in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
