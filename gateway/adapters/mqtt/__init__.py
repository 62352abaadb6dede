# The MQTT edge: the wire contract, a decision rendered for the OLED, the paho-mqtt bridge.
