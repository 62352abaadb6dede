"""Make an over-the-air update bundle from a firmware build: manifest + HMAC-SHA256 signature.

The manifest lists every file of the `hx` package (`.mpy`) with its size and SHA-256 and the version;
`manifest.sig` is the hex HMAC-SHA256 of the manifest's exact bytes under the gateway's OTA key
(VAR_DIR/ota-key): the gateway checks it at upload and signs the manifest again for each device under
that device's own key; the device checks that, then every file, before it switches (firmware/hx/ota.py).
Run: `python -m tools.ota_bundle --build build/firmware --version 0.2.0 --key-file VAR_DIR/ota-key
--out build/ota`; `build/ota/bundle.tar` is what POST /api/ota/bundles (or the console) takes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import tarfile
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


def archive(build: Path, raw: bytes, sig: str) -> bytes:
    """The upload form of a bundle: a tar of manifest.json, manifest.sig and every file it lists."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        members = [("manifest.json", raw), ("manifest.sig", sig.encode())]
        members += [(p, (build / p).read_bytes()) for p in sorted(json.loads(raw)["files"])]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=Path("build/firmware"))
    ap.add_argument("--version", required=True)
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--key-file", type=Path, help="the gateway's OTA key file (VAR_DIR/ota-key)")
    key.add_argument("--key-hex", help="the OTA key, hex")
    ap.add_argument("--out", type=Path, default=Path("build/ota"))
    args = ap.parse_args(argv)
    key_hex = args.key_file.read_text().strip() if args.key_file else args.key_hex
    raw, sig = make_bundle(args.build, args.version, bytes.fromhex(key_hex))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_bytes(raw)
    (args.out / "manifest.sig").write_text(sig + "\n")
    (args.out / "bundle.tar").write_bytes(archive(args.build, raw, sig))
    print(f"bundle {args.version}: {len(json.loads(raw)['files'])} files, manifest in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
