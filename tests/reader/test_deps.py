# `make setup-reader`'s package list: paho-mqtt as the gateway pins it, plus the `reader` extra.
from __future__ import annotations

import tomllib

from reader.deps import PYPROJECT, requirements


def test_the_reader_installs_the_pinned_link_and_its_extra_only() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = requirements()
    assert reqs[0] in project["dependencies"] and reqs[0].startswith("paho-mqtt==")
    assert reqs[1:] == project["optional-dependencies"]["reader"]
    assert all("==" in r for r in reqs), "every package pinned"
