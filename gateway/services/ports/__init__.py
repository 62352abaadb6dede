# The services' storage ports: a unit of work (database.py) and one repository Protocol per noun.
