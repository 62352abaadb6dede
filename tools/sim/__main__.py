"""Entry point: ``python -m tools.sim``."""

from tools.sim.cli import app

app(prog_name="python -m tools.sim")
