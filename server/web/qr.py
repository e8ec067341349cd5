"""QR codes for badge sheets, as SVG data URIs (segno: pure Python, no image libraries)."""

from __future__ import annotations

import segno


def qr_data_uri(content: str) -> str:
    return segno.make(content, error="m").svg_data_uri(scale=5, border=2)
