# The SQL behind the services' repository ports (gateway/services/ports): one module per noun.
