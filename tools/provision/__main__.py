# `python -m tools.provision`: the store manager's provisioning tool.
import importlib.util
import sys

# The USB tools come with the `device` extra (`make setup-dev`); say so instead of a traceback.
_missing = [m for m in ("serial", "mpremote", "esptool") if importlib.util.find_spec(m) is None]
if _missing:
    sys.exit(f"the device tools are not installed ({', '.join(_missing)}): run `make setup-dev`")

from tools.provision.cli import app  # noqa: E402

app()
