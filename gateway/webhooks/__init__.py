# Webhooks: signed order events in from a shop system, signed redemption events out to integrations.
