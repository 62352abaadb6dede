# Hexiao gateway: orders, the redemption ledger, the MQTT bridge and the REST API.
__version__ = "0.1.0"
