# `python -m gateway`: the command line, started by the composition root.
from gateway.bootstrap import main

if __name__ == "__main__":
    main()
