# Tests for the Hexiao tools (load generator, simulator, provisioning).
