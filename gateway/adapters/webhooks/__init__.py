# Outbound webhooks: following the ledger, signing and POSTing redemption events.
