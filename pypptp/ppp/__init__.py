"""PPP over GRE, sans-IO: the RFC 1661 automaton, LCP, authentication, IPCP, IPV6CP.

:class:`pypptp.ppp.link.PppLink` is the entry point: link phases, the
protocol table and the LCP keepalive, built on :mod:`~pypptp.ppp.fsm`
(one automaton for every control protocol) with the option handlers of
:mod:`~pypptp.ppp.lcp`, :mod:`~pypptp.ppp.ipcp` and :mod:`~pypptp.ppp.ipv6cp`,
and the authentication methods of :mod:`~pypptp.ppp.auth`.  CCP and MPPE
are the next layer.
"""
