"""pppd's word syntax, shared by its options files and its secrets files (pppd ``options.c``, ``getword``).

White space separates words and a newline ends a record; ``#`` starts a
comment outside quotes; ``"..."`` and ``'...'`` group words (quotes may be
mixed inside one word, and a quoted word may span lines); backslash escapes:
newline (continuation), ``\\a \\b \\f \\n \\r \\t``, ``\\s`` (space), ``\\ddd``
(octal, up to 3 digits), ``\\xHH`` (hex, up to 2 digits), and any other
character taken literally.  Words are at most :data:`MAX_WORD` bytes.

Pure text in, words out: chap-secrets records (:mod:`pypptp.ppp.secrets`) are
parsed with it here in the core, and the options files
(:mod:`pypptp.conf.pppd_options`) through :mod:`pypptp.conf.words`.
"""

from __future__ import annotations

__all__ = ["MAX_WORD", "WordError", "split_words"]

MAX_WORD = 1023
"""Bytes in a word at most (pppd's MAXWORDLEN less the terminating NUL)."""

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "s": " "}


class WordError(ValueError):
    """Text that pppd's word syntax cannot split (an unterminated quote, a word too long); the text
    names the file and line."""


def split_words(text: str, path: str = "<string>") -> list[list[tuple[str, int]]]:
    """The words of ``text`` by pppd's rules, as records (the words of each line, a continued line
    included) of (word, line number of the word's start); ``path`` names the file in errors."""
    records: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            if current:
                records.append(current)
                current = []
            line += 1
            i += 1
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if ch == "\\" and i + 1 < n and text[i + 1] == "\n":  # a continuation between words
            line += 1
            i += 2
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        word: list[str] = []
        start_line = line
        quote: str | None = None
        while i < n:
            ch = text[i]
            if quote is None and (ch in " \t\r\f\v\n" or ch == "#"):
                break
            if ch == "\\":
                i += 1
                if i >= n:
                    break
                ch = text[i]
                if ch == "\n":  # continuation
                    line += 1
                    i += 1
                    continue
                if ch in _SIMPLE_ESCAPES:
                    word.append(_SIMPLE_ESCAPES[ch])
                    i += 1
                elif ch in "01234567":
                    digits = text[i : i + 3]
                    count = len(digits) - len(digits.lstrip("01234567"))
                    word.append(chr(int(digits[:count], 8) & 0xFF))
                    i += count
                elif ch == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    digits = text[i + 1 : i + 3]
                    count = 2 if len(digits) == 2 and digits[1] in "0123456789abcdefABCDEF" else 1
                    word.append(chr(int(digits[:count], 16)))
                    i += 1 + count
                else:
                    word.append(ch)
                    i += 1
                continue
            if quote is not None and ch == quote:
                quote = None
            elif quote is None and ch in "\"'":
                quote = ch
            else:
                if ch == "\n":
                    line += 1
                word.append(ch)
            i += 1
        if quote is not None:
            raise WordError(f"{path}:{start_line}: unterminated {quote} quote")
        value = "".join(word)
        if len(value.encode("utf-8", "surrogateescape")) > MAX_WORD:
            raise WordError(f"{path}:{start_line}: a word is longer than {MAX_WORD} bytes")
        current.append((value, start_line))
    if current:
        records.append(current)
    return records
