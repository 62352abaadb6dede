# REST routes grouped by resource (catalog, reports, fleet, webhooks); the app mounts each router.
