# What every REST route takes from the request: the running gateway, and an order code in the path.
from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request

from gateway.domain.errors import Unavailable
from gateway.entrypoints.runtime import Runtime

T = TypeVar("T")


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


RT = Annotated[Runtime, Depends(_runtime)]
CodePath = Annotated[str, Path(min_length=1, max_length=128)]


def running(request: Request, part: str, kind: type[T], what: str) -> T:
    """The runtime's optional `part` (the fleet, OTA), or 503 UNAVAILABLE while it is not running."""
    found = getattr(request.app.state.rt, part, None)
    if not isinstance(found, kind):
        raise Unavailable(f"{what} is not running")
    return found
