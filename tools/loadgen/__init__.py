# Load generator and benchmark for the Hexiao gateway: simulated devices over raw-socket MQTT (`make bench`).
