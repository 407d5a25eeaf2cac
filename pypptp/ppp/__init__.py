"""PPP over GRE, sans-IO: the RFC 1661 automaton, LCP, authentication, CCP with MPPE, IPCP, IPV6CP.

:class:`pypptp.ppp.link.PppLink` is the entry point: link phases, the
protocol table and the LCP keepalive, built on :mod:`~pypptp.ppp.fsm`
(one automaton for every control protocol) with the option handlers of
:mod:`~pypptp.ppp.lcp`, :mod:`~pypptp.ppp.ccp`, :mod:`~pypptp.ppp.ipcp` and
:mod:`~pypptp.ppp.ipv6cp`, the authentication methods of :mod:`~pypptp.ppp.auth`
(PAP, CHAP-MD5, MS-CHAP v1 and v2) and the MPPE codecs of :mod:`~pypptp.ppp.mppe`.
Around them: chap-secrets records and pppd's matching (:mod:`~pypptp.ppp.secrets`,
with pppd's word syntax, :mod:`~pypptp.ppp.words`) and pppd's log lines as
plain texts (:mod:`~pypptp.ppp.logtext`).  Nothing here does I/O, reads a clock
or logs: the callers pass ``now``, read the files (:mod:`pypptp.conf`) and write
the lines (:mod:`pypptp.daemon.logs`); tests/test_layers.py keeps it so.
"""
