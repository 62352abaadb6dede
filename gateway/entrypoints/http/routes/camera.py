# REST for support of camera boards (/api/camera/...): the unread frames kept for devices in CAMERA_DEBUG.
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from gateway.adapters.camera.frame import BadHeader, parse_frame
from gateway.adapters.camera.worker import FrameDecoder
from gateway.domain.errors import NotFound, Unavailable
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller

router = APIRouter(prefix="/api/camera", tags=["camera"])

# Frames show phones, hands and sometimes faces: only an owner sees them, never by loopback trust.
Owner = Annotated[Person, Depends(caller("owner"))]
DevicePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
MEDIA = {"jpeg": "image/jpeg", "gray": "image/x-portable-graymap"}


def _camera(request: Request) -> FrameDecoder:
    camera = request.app.state.rt.camera
    if isinstance(camera, FrameDecoder):
        return camera
    raise Unavailable("camera decoding is not running")


Camera = Annotated[FrameDecoder, Depends(_camera)]


@router.get("/{device}/failures")
def failures(device: DevicePath, camera: Camera, who: Owner) -> dict[str, Any]:
    """The unread frames kept for a device in CAMERA_DEBUG (none for any other device), oldest first."""
    items = []
    for i, (age, payload) in enumerate(camera.failures(device)):
        try:
            f = parse_frame(payload)
        except BadHeader:  # kept frames were all read once; a bad one is not listed
            continue
        items.append(
            {"index": i, "sid": f.sid, "n": f.n, "fmt": f.fmt, "bytes": len(f.image), "age_s": round(age)}
        )
    return {"device": device, "debug": device in camera.debug, "items": items}


@router.get("/{device}/failures/{index}")
def failure_image(
    device: DevicePath, index: Annotated[int, Path(ge=0, le=49)], camera: Camera, who: Owner
) -> Response:
    """One kept frame as an image (JPEG as sent, or a PGM of the raw grayscale rows)."""
    kept = camera.failures(device)
    if index >= len(kept):
        raise NotFound(f"no kept frame {index} for {device}")
    f = parse_frame(kept[index][1])
    body = bytes(f.image)
    if f.fmt == "gray":
        body = b"P5\n%d %d\n255\n" % (f.width, f.height) + body
    return Response(body, media_type=MEDIA[f.fmt], headers={"Cache-Control": "no-store"})
