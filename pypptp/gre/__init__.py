"""Enhanced GRE data path (RFC 2637 section 4): the header codec and per-call
sequencing, both sans-IO.  The raw-socket transport is still to come; until
then an accepted call has no data path behind it."""

from pypptp.gre.codec import *  # noqa: F403
from pypptp.gre.sequencing import *  # noqa: F403
