"""The demo, run from a checkout: ``python examples/demo.py`` is ``python -m mint demo``.

The demo itself lives in the package (``mint._demo``) so that an installed
mint can run it (``mint demo``); this file stays for those who look for it
among the examples.  It needs the ``demo`` extra (hypercorn and websockets).
"""

from __future__ import annotations

import sys

from mint.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo"]))
