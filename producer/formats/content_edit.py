"""Edits of a PDF page's content stream: text objects that draw only invisible text (an earlier
OCR layer, on the page or in a Form XObject it draws, as OCRmyPDF writes it) or nothing at all.

A content stream is parsed by pikepdf (qpdf) into instructions; text objects are the
``BT ... ET`` runs. The text render mode (``Tr``) is graphics state, so it is followed through
``q``/``Q``; mode 3 draws nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pikepdf

logger = logging.getLogger(__name__)

SHOW = {"Tj", "TJ", "'", '"'}
POSITION = {"Td", "TD", "Tm", "T*"}  # only valid inside BT ... ET
PAINT = {"f", "F", "f*", "B", "B*", "b", "b*", "S", "s", "sh", "EI"}
INVISIBLE = 3  # text render mode: neither filled nor stroked


@dataclass
class TextObject:
    """One ``BT ... ET`` run and what it shows."""

    instructions: list = field(default_factory=list)
    shows: bool = False
    shows_visible: bool = False


def operator_of(instruction) -> str:
    """An instruction's operator; '' for bytes that are no operator name (a damaged stream)."""
    try:
        return str(instruction.operator)
    except (UnicodeDecodeError, ValueError):
        return ""


def _mode(instruction, current: int) -> int:
    try:
        return int(float(instruction.operands[0]))
    except (IndexError, TypeError, ValueError):
        return current


def split(instructions) -> list:
    """The stream as plain instructions and ``TextObject`` runs, in order (an unclosed run, or
    one a second ``BT`` interrupts, is kept as plain instructions)."""
    pieces, block, mode, stack = [], None, 0, []
    for instruction in instructions:
        operator = operator_of(instruction)
        if operator == "q":
            stack.append(mode)
        elif operator == "Q" and stack:
            mode = stack.pop()
        elif operator == "Tr":
            mode = _mode(instruction, mode)
        if operator == "BT":
            if block is not None:
                pieces.extend(block.instructions)
            block = TextObject([instruction])
            continue
        if block is None:
            pieces.append(instruction)
            continue
        block.instructions.append(instruction)
        if operator in SHOW:
            block.shows = True
            block.shows_visible |= mode != INVISIBLE
        if operator == "ET":
            pieces.append(block)
            block = None
    return pieces + (block.instructions if block is not None else [])


def rewrite(pdf: pikepdf.Pdf, page: pikepdf.Page, drop: Callable[[TextObject], bool], keep_state: bool) -> int:
    """Rewrite ``page``'s content without the text objects ``drop`` picks; ``keep_state`` keeps
    their operators other than BT/ET, showing and positioning (colour, font, render mode), for
    what follows. Returns how many were dropped; a stream qpdf cannot parse is left as it is."""
    try:
        pieces = split(pikepdf.parse_content_stream(page))
    except pikepdf.PdfError as exc:
        logger.warning("page content left as it is: %s", exc)
        return 0
    kept, dropped = [], 0
    for piece in pieces:
        if not isinstance(piece, TextObject):
            kept.append(piece)
        elif drop(piece):
            dropped += 1
            if keep_state:
                kept.extend(i for i in piece.instructions if operator_of(i) not in SHOW | POSITION | {"BT", "ET"})
        else:
            kept.extend(piece.instructions)
    if dropped:
        page.obj.Contents = pdf.make_stream(pikepdf.unparse_content_stream(kept))
    return dropped


def drop_invisible_text(pdf: pikepdf.Pdf, page: pikepdf.Page) -> int:
    """Remove the page's earlier OCR layer: text objects that show only invisible text, and
    the drawing of Form XObjects that hold nothing else; visible text, images and vector art
    stay. Returns how many were removed."""
    removed = rewrite(pdf, page, lambda block: block.shows and not block.shows_visible, keep_state=True)
    layers = {name for name, xobject in page.Resources.get("/XObject", {}).items() if _invisible_form(xobject)}
    if not layers:
        return removed
    kept, dropped = [], 0
    for instruction in pikepdf.parse_content_stream(page):
        if operator_of(instruction) == "Do" and instruction.operands and str(instruction.operands[0]) in layers:
            dropped += 1
            continue
        kept.append(instruction)
    if dropped:
        page.obj.Contents = pdf.make_stream(pikepdf.unparse_content_stream(kept))
    return removed + dropped


def _invisible_form(xobject) -> bool:
    """Whether a Form XObject shows text, all of it invisible, and paints nothing else."""
    if xobject.get("/Subtype") != "/Form":
        return False
    try:
        pieces = split(pikepdf.parse_content_stream(xobject))
    except pikepdf.PdfError:
        return False
    blocks = [piece for piece in pieces if isinstance(piece, TextObject)]
    painted = any(operator_of(piece) in PAINT | {"Do"} for piece in pieces if not isinstance(piece, TextObject))
    return bool(blocks) and not painted and any(b.shows for b in blocks) and not any(b.shows_visible for b in blocks)


def drop_empty_text(pdf: pikepdf.Pdf, page: pikepdf.Page) -> int:
    """Remove text objects that show nothing (ReportLab's page preamble selects its default
    font in one), with everything in them, so they name no font."""
    return rewrite(pdf, page, lambda block: not block.shows, keep_state=False)
