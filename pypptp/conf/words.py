"""pppd's word syntax for the file formats read here: the splitter shared by the options files
(:mod:`~pypptp.conf.pppd_options`) and chap-secrets (:mod:`~pypptp.conf.chap_secrets`).

The splitter itself, pure text in and words out, lives in the core as
:mod:`pypptp.ppp.words`, because :mod:`pypptp.ppp.secrets` parses chap-secrets
records with it and no module of the cores imports from outside them; this
module is its name on the configuration side.

It also has :func:`drop_bom`, for every file read here: a UTF-8 byte order mark
(Notepad writes one) is no white space to pppd or pptpd, so the first word of
the file carries it and means something else (``\\ufeffname``, ``\\ufeffalice``).
"""

from __future__ import annotations

from pypptp.ppp.words import MAX_WORD, WordError, split_words

__all__ = ["BOM", "MAX_WORD", "WordError", "drop_bom", "split_words"]

BOM = "\ufeff"
"""A UTF-8 byte order mark, decoded."""


def drop_bom(text: str, path: str, consequence: str, strict: bool) -> tuple[str, str | None]:
    """``text`` without a leading byte order mark, and what to say of it (None when there was none).

    ``consequence``: what pppd or pptpd would make of it.  ``strict`` (``pypptpd --check``) words it as
    an error; otherwise as a warning that pypptpd skips it: a mark there is always a mistake, and keeping
    it would silently lock users out (a chap-secrets saved by Notepad on a running server)."""
    if not text.startswith(BOM):
        return text, None
    handling = "" if strict else " (pypptpd skips it)"
    return text[len(BOM) :], (
        f"{path}:1: starts with a UTF-8 byte order mark (saved by Notepad?): {consequence}{handling}; "
        f"remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {path}"
    )
