# Adapters to the outside: the database, the MQTT wire and bridge, the brokers, outbound webhooks.
