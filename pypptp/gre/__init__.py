"""Enhanced GRE data path (RFC 2637 section 4).

Empty in this release: the codec, per-call sequencing and the raw-socket
transport are the next piece of work.  Until then an accepted call has no
data path behind it.
"""
