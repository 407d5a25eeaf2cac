"""pppd's word syntax for the file formats read here: the splitter shared by the options files
(:mod:`~pypptp.conf.pppd_options`) and chap-secrets (:mod:`~pypptp.conf.chap_secrets`).

The splitter itself, pure text in and words out, lives in the core as
:mod:`pypptp.ppp.words`, because :mod:`pypptp.ppp.secrets` parses chap-secrets
records with it and no module of the cores imports from outside them; this
module is its name on the configuration side.
"""

from __future__ import annotations

from pypptp.ppp.words import MAX_WORD, WordError, split_words

__all__ = ["MAX_WORD", "WordError", "split_words"]
