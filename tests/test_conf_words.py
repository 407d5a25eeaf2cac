"""pppd's word splitter (:mod:`pypptp.ppp.words`, named :mod:`pypptp.conf.words` on the configuration side):
records, line numbers and errors; the escapes are exercised through chap-secrets (tests/test_ppp_secrets.py)
and the options files (tests/test_pppd_options.py)."""

from __future__ import annotations

import pytest

from pypptp.conf import words
from pypptp.ppp.words import MAX_WORD, WordError, split_words


def test_conf_names_the_cores_splitter() -> None:
    assert words.split_words is split_words and words.WordError is WordError and words.MAX_WORD == MAX_WORD


def test_records_and_the_line_each_word_starts_on() -> None:
    text = "# comment\n\na b  c\t# trailing\n'multi\nline' d \\\n e\n  \n f\n"
    assert split_words(text, "f") == [
        [("a", 3), ("b", 3), ("c", 3)],
        [("multi\nline", 4), ("d", 5), ("e", 6)],  # a continued line stays one record
        [("f", 8)],
    ]
    assert split_words("") == [] and split_words("last") == [[("last", 1)]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n'open", "opts:2: unterminated ' quote"),
        ("x" * (MAX_WORD + 1), f"opts:1: a word is longer than {MAX_WORD} bytes"),
        ("é" * (MAX_WORD // 2 + 1), f"opts:1: a word is longer than {MAX_WORD} bytes"),  # bytes, not characters
    ],
)
def test_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(WordError, match=f"^{message}$"):
        split_words(text, "opts")
    assert split_words("x" * MAX_WORD) == [[("x" * MAX_WORD, 1)]]
