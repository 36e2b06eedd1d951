"""Text from outside that Python holds but cannot encode: lone surrogates."""

from __future__ import annotations

import re

# Python holds these only alone: a pair in JSON or UTF-16 decodes to one code point.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_ESCAPED = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (bytes that were not UTF-8, kept by
    ``surrogateescape``, or an unpaired ``\\ud800``)."""
    return _SURROGATE.search(text) is not None


def without_surrogates(text: str) -> str:
    """``text`` with every lone surrogate made U+FFFD, so it can be encoded (tokenizers,
    SQLite). Bytes that were not UTF-8, kept by ``surrogateescape`` (a command-line argument,
    a file name), are decoded again as UTF-8 would replace them; the rest (``"\\ud800"`` in
    JSON, say) each become one U+FFFD."""
    if not has_surrogates(text):
        return text
    text = _NOT_ESCAPED.sub("\ufffd", text)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
