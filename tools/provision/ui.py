# Terminal output of the provisioning tool: numbered steps with timings, and errors with a hint.
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console

from tools.provision.errors import ProvisionError, UsageError

console = Console(highlight=False)
T = TypeVar("T")


def fail(err: ProvisionError) -> typer.Exit:
    console.print(f"[bold red]✗ {err.message}[/]")
    if err.hint:
        console.print(f"  [yellow]→ {err.hint}[/]")
    return typer.Exit(2 if isinstance(err, UsageError) else 1)


class Steps:
    """Numbered steps with a spinner while they run and their duration when done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0
        self.t0 = time.monotonic()
        self.times: dict[str, float] = {}

    def run(self, title: str, fn: Callable[[], T], done: Callable[[T], str] | None = None) -> T:
        self.n += 1
        t = time.monotonic()
        with console.status(f"[{self.n}/{self.total}] {title}…"):
            result = fn()
        took = time.monotonic() - t
        self.times[title] = took
        note = f": {done(result)}" if done is not None else ""
        console.print(f"[green]✓[/] [{self.n}/{self.total}] {title}{note} [dim]({took:.1f} s)[/]")
        return result

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0


@contextmanager
def reporting() -> Iterator[None]:
    try:
        yield
    except ProvisionError as err:
        raise fail(err) from err
