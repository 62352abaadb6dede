# `python -m tools.provision`: the store manager's provisioning tool.
from tools.provision.cli import app

app()
