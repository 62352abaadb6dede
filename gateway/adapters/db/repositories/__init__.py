# SQL behind the services' store ports (one module per noun).
