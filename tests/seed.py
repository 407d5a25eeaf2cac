"""Configuration fixtures shared by the tests: Debian's pptpd seed files."""

from __future__ import annotations

# Debian's /etc/ppp/pptpd-options, comments trimmed
DEBIAN_PPTPD_OPTIONS = """\
# Authentication
name pptpd
#chapms-strip-domain

# Encryption
# BSD licensed ppp-2.4.2 upstream with MPPE only, kernel module ppp_mppe.o
refuse-pap
refuse-chap
refuse-mschap
require-mschap-v2
require-mppe-128

# Network and Routing
ms-dns 8.8.8.8
ms-dns 8.8.4.4
proxyarp
nodefaultroute

# Miscellaneous
lock
nobsdcomp
novj
novjccomp
nologfd
"""
SEED_OPTIONS = "".join(line + "\n" for line in DEBIAN_PPTPD_OPTIONS.splitlines() if line and line[0] != "#")
"""The same options without comments or blank lines (line N is the Nth option)."""
