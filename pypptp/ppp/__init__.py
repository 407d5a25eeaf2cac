"""PPP over GRE: the RFC 1661 automaton, LCP, authentication, IPCP, CCP/MPPE.

Empty in this release: the PPP engine follows the GRE data path.
"""
