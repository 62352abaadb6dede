# `python -m reader.deps`: the reader's pinned packages (paho-mqtt and the `reader` extra of pyproject.toml),
# as a requirements file (environment markers kept), for `make setup-reader`: a reader needs none of the
# gateway's packages.
from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements() -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    paho = [d for d in project["dependencies"] if d.startswith("paho-mqtt")]
    return paho + list(project["optional-dependencies"]["reader"])


if __name__ == "__main__":
    print("\n".join(requirements()))
