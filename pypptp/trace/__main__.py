"""``python -m pypptp.trace FILE``: print a session trace as pppd's ``sent [...]``/``rcvd [...]`` lines."""

from __future__ import annotations

import sys

from pypptp.trace.reader import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
