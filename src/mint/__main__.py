"""``python -m mint URL`` (or ``python -m mint demo``): the ``mint`` command, see ``mint.cli``."""

import sys

from mint.cli import main

if __name__ == "__main__":
    sys.exit(main())
