"""The printable credential sheet as a PDF download (same cards as the print page).

Uses DejaVu Sans when the system has it (every script a class list may hold); otherwise the
PDF core font, with characters it lacks shown as "?".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
CARD_WIDTH, CARD_HEIGHT, MARGIN = 90.0, 62.0, 12.0


def credential_sheet(cards: list[dict[str, Any]], layout: str, sign_in_url: str) -> bytes:
    from fpdf import FPDF  # here: fpdf and fontTools were a sixth of every process's start-up

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    font = _font(pdf)
    per_page = 8 if layout == "paper-saver" else 1
    for index, card in enumerate(cards):
        if index % per_page == 0:
            pdf.add_page()
        if layout == "paper-saver":
            column, row = index % 2, (index % per_page) // 2
            x, y = MARGIN + column * (CARD_WIDTH + 6), MARGIN + row * (CARD_HEIGHT + 6)
            pdf.set_draw_color(120)
            pdf.set_dash_pattern(dash=2, gap=2)
            pdf.rect(x, y, CARD_WIDTH, CARD_HEIGHT)
            pdf.set_dash_pattern()
            _card(pdf, font, card, sign_in_url, x + 4, y + 5, CARD_WIDTH - 8, size=10)
        else:
            _card(pdf, font, card, sign_in_url, 25, 40, 160, size=16)
    return bytes(pdf.output())


def _card(
    pdf: FPDF,
    font: str,
    card: dict[str, Any],
    url: str,
    x: float,
    y: float,
    width: float,
    *,
    size: int,
) -> None:
    line = size * 0.55
    pdf.set_xy(x, y)
    pdf.set_font(font, "B", size + 2)
    pdf.cell(width, line + 1, _text(font, card["display_name"]), new_x="LEFT", new_y="NEXT")
    pdf.set_font(font, "", size)
    password = card.get("password") or card.get("note") or ""
    for label, value in (
        ("Class", ", ".join(card["classes"]) or "-"),
        ("Sign in at", url),
        ("Username", card["username"]),
        ("Password", password),
    ):
        pdf.set_x(x)
        pdf.multi_cell(width, line, _text(font, f"{label}: {value}"), new_x="LEFT", new_y="NEXT")


def _font(pdf: FPDF) -> str:
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        pdf.add_font("DejaVu", "", str(regular))
        pdf.add_font("DejaVu", "B", str(bold))
        return "DejaVu"
    return "Helvetica"


def _text(font: str, text: str) -> str:
    if font == "Helvetica":
        return text.encode("latin-1", "replace").decode("latin-1")
    return text
