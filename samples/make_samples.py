"""Render the demo's sample images (run once; the PNGs are committed).

    python samples/make_samples.py

Lines go to ``samples/lines/`` (submitted with mode=line), pages to ``samples/pages/``
(mode=page). Text is drawn with DejaVu fonts, with a little blur and noise so the samples look
scanned rather than synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).parent
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
LINES = [
    ("invoice_total.png", "DejaVuSans.ttf", "Invoice No. 2024-0117   Total due: EUR 1,284.50"),
    ("archive_note.png", "DejaVuSerif.ttf", "Box 14, folder 3: letters from the harbour office, 1931-1934."),
    ("address.png", "DejaVuSansMono.ttf", "42 Wallaby Way, Sydney NSW 2000"),
]
PAGE = [
    "QUARTERLY REPORT",
    "",
    "The archive digitised 18,450 pages this quarter,",
    "up from 12,900 in the previous one.",
    "Most scans came from the shipping registers",
    "(1890-1925) and the town council minutes.",
    "",
    "Next steps: index the registers by ship name",
    "and publish the minutes as searchable PDF.",
]


def _scanned(img: Image.Image, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (img.height, img.width, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_line(text: str, font_file: str, seed: int) -> Image.Image:
    font = ImageFont.truetype(str(FONT_DIR / font_file), 28)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 24, bottom - top + 20), (250, 248, 240))
    ImageDraw.Draw(img).text((12 - left, 10 - top), text, font=font, fill=(20, 20, 30))
    return _scanned(img, seed)


def render_page(lines: list[str], seed: int) -> Image.Image:
    title = ImageFont.truetype(str(FONT_DIR / "DejaVuSans-Bold.ttf"), 34)
    body = ImageFont.truetype(str(FONT_DIR / "DejaVuSerif.ttf"), 26)
    img = Image.new("RGB", (900, 620), (252, 250, 244))
    draw = ImageDraw.Draw(img)
    y = 50
    for i, line in enumerate(lines):
        draw.text((70, y), line, font=title if i == 0 else body, fill=(25, 25, 25))
        y += 52 if i == 0 else 44
    return _scanned(img.rotate(0.8, fillcolor=(252, 250, 244), expand=False), seed)


def main() -> None:
    (HERE / "lines").mkdir(exist_ok=True)
    (HERE / "pages").mkdir(exist_ok=True)
    for seed, (name, font, text) in enumerate(LINES):
        render_line(text, font, seed).save(HERE / "lines" / name)
    render_page(PAGE, 99).save(HERE / "pages" / "quarterly_report.jpg", quality=88)


if __name__ == "__main__":
    main()
