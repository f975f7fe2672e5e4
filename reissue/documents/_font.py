"""The documents' Chinese font: Debian's WenQuanYi Zen Hei (`fonts-wqy-zenhei`), a
TrueType collection fpdf2 embeds (the subset the page uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["FONT_ENV", "FontMissing", "cjk_font"]

# A TrueType font (.ttf, or a .ttc collection: its first face) with Chinese glyphs.
FONT_ENV = "REISSUE_CJK_FONT"
_FAMILY = "WenQuanYi Zen Hei"
_KNOWN = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian, Ubuntu
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",  # Fedora, Arch
)


class FontMissing(RuntimeError):
    """No font with Chinese glyphs for the documents."""


def _from_fontconfig() -> Path | None:
    if shutil.which("fc-list") is None:
        return None
    listed = subprocess.run(
        ["fc-list", _FAMILY, "file"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    for line in sorted(listed.splitlines()):
        path = Path(line.strip().rstrip(":"))
        if path.suffix.lower() in (".ttf", ".ttc") and path.is_file():
            return path
    return None


def cjk_font() -> Path:
    """The font file: `REISSUE_CJK_FONT` if set, else WenQuanYi Zen Hei where Debian (or
    another distribution) puts it, else where fontconfig finds it."""
    named = os.environ.get(FONT_ENV, "").strip()
    if named:
        path = Path(named)
        if not path.is_file():
            raise FontMissing(f"{FONT_ENV}={named}: no such font file")
        return path
    for known in _KNOWN:
        if Path(known).is_file():
            return Path(known)
    found = _from_fontconfig()
    if found is None:
        raise FontMissing(
            f"no Chinese font for the documents: install Debian's fonts-wqy-zenhei "
            f"(`make system-packages`; the image has it) or set {FONT_ENV} to a "
            ".ttf/.ttc font with Chinese glyphs"
        )
    return found
