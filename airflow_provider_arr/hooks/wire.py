"""What the bytes of an answer say: its text, its JSON, and what of it an error may quote.

Rule 5 of issue 18, "lenient, standard parsing of answers", lives here, once, for both transports:

- **Text.** JSON is UTF-8 (RFC 8259 section 8.1), whatever the ``Content-Type`` says or omits: a
  byte-order mark (UTF-8, or UTF-16/32) is honoured and removed; a body that is valid UTF-8 is read as
  UTF-8 even under another or a misspelt ``charset`` (``utf8``, ``"UTF-8"``, ``iso-8859-1``); only a body
  that is not UTF-8 is read with its declared charset, and failing that as Latin-1 (never an error).
  The content type itself is not checked: a JSON body is read as JSON under any type, or none.
- **JSON.** An empty or blank body is ``None`` (the caller decides whether the call allows one); a
  stray BOM character left in a text is ignored.
- **Quotes.** An error quotes a service's message only through :func:`mask_secrets`; the body of a token
  (STS) answer is never quoted at all, since it holds the access token.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from typing import Any

#: Byte-order marks and their codecs, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
#: What looks like a bearer token or JWT in a quoted text: masked even when its value is not known.
_TOKEN_SHAPES = (
    re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"),  # a JWT (its header always starts with '{"')
    re.compile(r"(?i)(\bbearer\s+)\S+"),
    re.compile(r"""(?i)(["']?access_?token["']?\s*[:=]\s*["']?)[^"'\s,}]+"""),
)
MASK = "***"


def decode_body(content: bytes, content_type: str | None) -> str:
    """An answer's body as text, by the rules in the module docstring.

    :param content: the body's bytes.
    :param content_type: the ``Content-Type`` header, if any.
    """
    for bom, codec in _BOMS:
        if content.startswith(bom):
            try:
                return content[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                break
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _CHARSET.search(content_type or "")
    if declared:
        try:
            return content.decode(declared.group(1))
        except (LookupError, UnicodeDecodeError):
            pass
    return content.decode("latin-1")


def read_json(text: str) -> Any:
    """The JSON of a body's text; ``None`` for an empty or blank body. Raises ``ValueError`` if not JSON.

    :param text: the body, decoded by :func:`decode_body` (or given as text by a test).
    """
    text = text.lstrip("\ufeff")
    if not text.strip():
        return None
    return json.loads(text)


def mask_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets, and anything shaped like a token, replaced by ``***``.

    :param text: what an error is about to quote (a service message, part of a body).
    :param secrets: values known to be secret (the account key, the token in use).
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for shape in _TOKEN_SHAPES:
        text = shape.sub(_masked, text)
    return text


def _masked(found: re.Match[str]) -> str:
    """What replaces a token-shaped match: its lead-in (``Bearer``, ``"accessToken": "``), then ``***``."""
    lead = found.group(1) if found.re.groups else ""
    return lead + MASK


def not_json_message(text: str, secret: bool) -> str:
    """What an error says of a body that is not JSON: its start (masked), or for a token answer, its size.

    :param text: the body.
    :param secret: the body belongs to a token answer, so no part of it is shown.
    """
    if secret:
        return f"answer is not JSON ({len(text)} characters, not shown: a token answer holds a secret)"
    return f"answer is not JSON: {mask_secrets(text[:200])!r}"
