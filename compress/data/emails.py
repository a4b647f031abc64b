"""Raw RFC 822 email -> plain body text: headers dropped, MIME decoded, HTML converted to text."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message
from html.parser import HTMLParser

_SKIPPED_TAGS = {"script", "style", "head", "title"}
_BLOCK_TAGS = {"p", "br", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skipping:
            self._skipping -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)  # undoes quoted-printable and base64
    if payload is None:
        return ""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("latin-1", errors="replace")


def normalize_whitespace(text: str) -> str:
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def email_body(raw: str | bytes) -> str:
    """The text of every text/plain and text/html part of ``raw``, without headers or attachments."""
    if isinstance(raw, bytes):
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    else:
        message = email.message_from_string(raw, policy=email.policy.compat32)
    texts = []
    for part in message.walk():
        if part.is_multipart() or part.get_filename():
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            texts.append(_decoded(part))
        elif kind == "text/html":
            texts.append(html_to_text(_decoded(part)))
    return normalize_whitespace("\n\n".join(texts))
