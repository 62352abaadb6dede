# Use cases around the domain: the redeem loop, adjustments, catalog, devices, PINs, check-out, webhooks in, queries.
