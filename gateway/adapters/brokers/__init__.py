# MQTT brokers the gateway can run itself: Mosquitto (supervised child) or amqtt (demo, in-process).
