# Hexiao tools: provisioning, simulator, load generator, build helpers.
