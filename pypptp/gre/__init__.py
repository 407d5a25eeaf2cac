"""Enhanced GRE (RFC 2637 section 4), sans-IO: :mod:`~pypptp.gre.codec`, the header codec and the one
definition of the wire format (the data path packs and unpacks headers with its names), and
:mod:`~pypptp.gre.sequencing`, one call's sequencing, acknowledgments and flow control.  The raw GRE
socket that carries them is :mod:`pypptp.aio.gre`."""

from pypptp.gre.codec import *  # noqa: F403
from pypptp.gre.sequencing import *  # noqa: F403
