"""The configuration file formats, read as pptpd and pppd read them.

:mod:`~pypptp.conf.pptpd` (``pptpd.conf``), :mod:`~pypptp.conf.pppd_options` (``/etc/ppp/options`` and
the ``option`` file) and :mod:`~pypptp.conf.chap_secrets` (reading ``chap-secrets`` safely; the records
and pppd's matching rules are :mod:`pypptp.ppp.secrets`).
"""
