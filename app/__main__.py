"""``python -m app``: the ``backprop-live`` command."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
