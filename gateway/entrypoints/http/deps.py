# What every REST route takes from the request: the running gateway, and an order code in the path.
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from gateway.entrypoints.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


RT = Annotated[Runtime, Depends(_runtime)]
CodePath = Annotated[str, Path(min_length=1, max_length=128)]
