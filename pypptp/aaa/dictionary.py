"""The RADIUS dictionary pypptp ships, parsed once per process.

pyrad encodes and decodes attributes by name through a
:class:`pyrad.dictionary.Dictionary`.  Ours is package data
(``pypptp/aaa/data/dictionary``) rather than the host's
``/etc/radiusclient/dictionary``: that file (radiusclient's, or radcli's)
differs between distributions, lacks the RFC 2548 Microsoft attributes unless
``dictionary.microsoft`` is included, and is not always in a format pyrad reads.
Parsing costs a few milliseconds, and the dictionary is only read afterwards,
so one cached instance serves every client in the process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pyrad.dictionary import Dictionary

__all__ = ["DICTIONARY_PATH", "load_dictionary"]

DICTIONARY_PATH = Path(__file__).resolve().parent / "data" / "dictionary"
"""The shipped dictionary (FreeRADIUS format, the attribute names FreeRADIUS uses)."""


@functools.cache
def load_dictionary() -> Dictionary:
    """The shipped dictionary, parsed on first use and shared afterwards (treat it as read-only)."""
    return Dictionary(str(DICTIONARY_PATH))
