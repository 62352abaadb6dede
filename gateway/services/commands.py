# Device commands: validate what an operator asks for and encode it as the contract's `cmd` payload.
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, ValidationError

from gateway.domain.errors import ValidationFailed
from gateway.domain.verdict import LINE_CHARS, SOUNDS
from gateway.services.inputs import StrictIn

# Commands that travel to the device over MQTT. `rotate` and `revoke` act on the broker instead.
DEVICE_COMMANDS = ("beep", "show", "reboot", "status", "set_mode")
BROKER_ACTIONS = ("rotate", "revoke")
OLED_LINE = rf"^[\x20-\x7e]{{0,{LINE_CHARS}}}$"  # printable ASCII: the OLED font has nothing else


class _Args(StrictIn):
    pass


class BeepArgs(_Args):
    sound: str = Field(default="ok", pattern="^(" + "|".join(SOUNDS) + ")$")


class ShowArgs(_Args):
    l1: str = Field(pattern=OLED_LINE)
    l2: str = Field(default="", pattern=OLED_LINE)
    secs: int | None = Field(default=None, ge=1, le=3600)


class NoArgs(_Args):
    pass


class ModeArgs(_Args):
    mode: Literal["handheld", "turnstile"]


ARG_MODELS: dict[str, type[_Args]] = {
    "beep": BeepArgs,
    "show": ShowArgs,
    "reboot": NoArgs,
    "status": NoArgs,
    "set_mode": ModeArgs,
    "rotate": NoArgs,
    "revoke": NoArgs,
}


class CommandIn(StrictIn):
    cmd: str = Field(max_length=16, description="beep, show, reboot, status, set_mode, rotate or revoke")
    args: dict[str, Any] = Field(default_factory=dict)


def check_command(body: CommandIn) -> dict[str, Any]:
    """The validated arguments of `body` (defaults filled in); a clear 422 for anything else."""
    model = ARG_MODELS.get(body.cmd)
    if model is None:
        raise ValidationFailed(
            f"unknown command {body.cmd!r}; use one of {', '.join(ARG_MODELS)}", field="cmd"
        )
    try:
        args = model.model_validate(body.args)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"args.{where}: {first['msg']}", field=f"args.{where}") from err
    return args.model_dump(exclude_none=True)


def encode(cmd: str, args: dict[str, Any]) -> str:
    """The MQTT payload of a device command (docs/protocol.md, "command")."""
    return json.dumps({"v": 1, "cmd": cmd, "args": args}, separators=(",", ":"))
