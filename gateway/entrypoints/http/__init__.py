# The REST API: the app, the one auth dependency family, input schemas and routes by resource.
