# Review of the bundle upload's archive reader (entrypoints/http/routes/ota.py read_archive): whatever an
# archive holds, reading it is bounded before the bundle's own checks run.
from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from gateway.domain import ota
from gateway.domain.errors import ValidationFailed
from gateway.entrypoints.http.routes.ota import read_archive


def _tar(dirs: int, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(dirs):
            info = tarfile.TarInfo(f"d{i}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def test_a_small_archive_of_countless_entries_is_refused() -> None:
    # Directory entries were skipped without being counted: a gzip of a few hundred KB holds millions of
    # them, each one a TarInfo kept by tarfile, all read in the request.
    body = _tar(4 * ota.MAX_FILES + 10, {"hx/__init__.mpy": b"x"})
    assert len(body) < ota.MAX_BUNDLE
    with pytest.raises(ValidationFailed, match="entries"):
        read_archive(body)


def test_a_bundle_with_its_folders_is_read() -> None:
    out = read_archive(_tar(3, {"manifest.json": b"{}", "./hx/__init__.mpy": b"x"}))
    assert out == {"manifest.json": b"{}", "hx/__init__.mpy": b"x"}
