"""The Unicode font embedded in invoice PDFs: DejaVu Sans (Debian ``fonts-dejavu-core``).

PDF/A-3 (Factur-X) needs every font embedded, and locale formats need characters outside
Windows-1252 (U+202F in French amounts). Without the font the PDF falls back to the core
Helvetica font: readable, but not PDF/A."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts/dejavu"),
)


@dataclass(frozen=True, slots=True)
class PdfFonts:
    regular: Path
    bold: Path


def find_fonts(dirs: Sequence[Path] = FONT_DIRS) -> PdfFonts | None:
    """DejaVu Sans regular + bold from the first of ``dirs`` that has both, else None."""
    for d in dirs:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return PdfFonts(regular, bold)
    return None
