# The command-line options several provisioning commands share (board port, gateway, its CA, token).
from __future__ import annotations

import typer

PortOpt = typer.Option(..., "--port", "-p", help="serial port of the board (see `ports`), e.g. /dev/ttyUSB0")
GatewayOpt = typer.Option(
    "http://127.0.0.1:8000", "--gateway", envvar="HX_GATEWAY", help="the gateway's web address"
)
GatewayCaOpt = typer.Option(
    None,
    "--gateway-ca",
    envvar="HX_GATEWAY_CA",
    help="the gateway's CA (VAR_DIR/ca/ca.pem) to check an https:// --gateway against",
)
TokenOpt = typer.Option(
    None, "--token", envvar="HX_TOKEN", help="API token of a manager (from the console); env HX_TOKEN"
)
BrokerHostOpt = typer.Option(None, help="address the device uses for MQTT (default: from the gateway)")
BrokerPortOpt = typer.Option(None, help="MQTT port for the device (default: from the gateway)")
