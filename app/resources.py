"""Where the folders kept beside app/ in the repository are: migrations, templates, static.

A checkout (or an editable install) has them beside the package; a built wheel carries
copies inside it as app/_bundled/ (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    bundled = PACKAGE / "_bundled" / name
    return bundled if bundled.is_dir() else PACKAGE.parent / name
