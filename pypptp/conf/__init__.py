"""The configuration file formats, read as pptpd and pppd read them.

:mod:`~pypptp.conf.pptpd` (``pptpd.conf``), :mod:`~pypptp.conf.pppd_options` (``/etc/ppp/options`` and
the ``option`` file), :mod:`~pypptp.conf.chap_secrets` (reading ``chap-secrets`` safely; the records
and pppd's matching rules are :mod:`pypptp.ppp.secrets`) and :mod:`~pypptp.conf.words` (pppd's word
splitter, shared by the options files and chap-secrets; it lives in the core, :mod:`pypptp.ppp.words`).
:mod:`~pypptp.conf.radiusclient` reads the radiusclient configuration pppd's ``radius.so`` reads (and
its ``servers`` file of shared secrets).
"""

from pypptp.conf.chap_secrets import CHAP_SECRETS, read_secrets_file
from pypptp.conf.pppd_options import SYSTEM_OPTIONS, OptionsError, PppdOptions, parse_pppd_options, read_pppd_options
from pypptp.conf.pptpd import DEFAULT_PATH, ConfigError, PptpdConfig, parse_pptpd_conf, read_pptpd_conf
from pypptp.conf.radiusclient import RADIUSCLIENT_CONF, RadiusConfig, RadiusConfigError, read_radiusclient_conf
from pypptp.conf.words import WordError, split_words

__all__ = [
    "CHAP_SECRETS",
    "DEFAULT_PATH",
    "RADIUSCLIENT_CONF",
    "SYSTEM_OPTIONS",
    "ConfigError",
    "OptionsError",
    "PppdOptions",
    "PptpdConfig",
    "RadiusConfig",
    "RadiusConfigError",
    "WordError",
    "parse_pppd_options",
    "parse_pptpd_conf",
    "read_pppd_options",
    "read_pptpd_conf",
    "read_radiusclient_conf",
    "read_secrets_file",
    "split_words",
]
