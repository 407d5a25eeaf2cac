"""The configuration file formats, read as pptpd and pppd read them.

:mod:`~pypptp.conf.pptpd` (``pptpd.conf``), :mod:`~pypptp.conf.pppd_options` (``/etc/ppp/options`` and
the ``option`` file), :mod:`~pypptp.conf.chap_secrets` (reading ``chap-secrets`` safely; the records
and pppd's matching rules are :mod:`pypptp.ppp.secrets`) and :mod:`~pypptp.conf.words` (pppd's word
splitter, shared by the options files and chap-secrets; it lives in the core, :mod:`pypptp.ppp.words`).
"""
