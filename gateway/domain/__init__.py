# The pure domain: decisions, validity, codes, order state and errors — no I/O, no framework, no gateway layer above.
