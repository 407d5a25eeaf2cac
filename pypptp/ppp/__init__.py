"""PPP over GRE: the RFC 1661 automaton, LCP, authentication, IPCP, CCP/MPPE.

So far: :mod:`pypptp.ppp.crypto`, the MS-CHAP v1/v2 primitives (MD4, DES,
the RFC 2433 / RFC 2759 algorithms).  The automaton and the protocols are
the next work.
"""
