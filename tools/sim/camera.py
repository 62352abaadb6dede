"""A simulated camera board's view: what the unix board's camera (HX_CAMERA) sees is a file we write.

``show(code)`` renders the order's QR (segno) as a handheld shot — perspective, blur, noise, glare,
JPEG (tools/camera/synth.py) — into ``scene.jpg``; ``hide()`` takes it away, leaving ``none.jpg`` (the
counter without a code). Files are replaced atomically, so the firmware never reads half a frame.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tools.camera.synth import Scene, jpeg, render

# A shot a cheap camera takes at a counter (given at 320x240, scaled to the camera's resolution):
# tilted, a little blurred and noisy, some glare, JPEG 30.
HANDHELD = Scene(ppm=5.0, tilt=18.0, roll=-12.0, blur=0.7, noise=5.0, glare=0.25, offset=8.0, seed=7)
QUALITY = 30


class SimCamera:
    def __init__(self, folder: Path, width: int = 640, height: int = 480) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width, height
        self._write("none.jpg", jpeg(render(self._scene("")), QUALITY))

    @property
    def env(self) -> dict[str, str]:
        """What the firmware process needs to use this camera."""
        return {"HX_CAMERA": str(self.folder)}

    def _scene(self, text: str, **kw: object) -> Scene:
        k = self.width / 320  # HANDHELD is given at 320x240: the same shot at this resolution
        base = replace(
            HANDHELD,
            text=text,
            width=self.width,
            height=self.height,
            ppm=HANDHELD.ppm * k,
            blur=HANDHELD.blur * k,
        )
        return replace(base, **kw)  # type: ignore[arg-type]

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)

    def show(self, code: str, quality: int = QUALITY, **scene: object) -> bytes:
        """Hold `code` in front of the camera (scene fields override the handheld defaults)."""
        data = jpeg(render(self._scene(code, **scene)), quality)
        self._write("scene.jpg", data)
        return data

    def put(self, data: bytes) -> None:
        """Show an already made JPEG frame (a scripted scene: two codes, a dark room ...)."""
        self._write("scene.jpg", data)

    def hide(self) -> None:
        """Take the code away: the camera sees the empty counter."""
        (self.folder / "scene.jpg").unlink(missing_ok=True)
