# Entry points: the REST API, the web console and the command line.
