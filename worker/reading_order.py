"""Reading order and blocks of a page's text lines, from their boxes alone.

The detector returns lines in row order (``worker.detect.reading_order``: top to bottom, left to
right), which interleaves the lines of side-by-side columns. This module finds the page's
columns with a recursive XY-cut over the line boxes and reads them one after the other:

1. Skew: every box is turned upright by the page's skew (``worker.line_geometry``), so a page
   scanned ±10° off keeps its gutters.
2. Columns: a region splits at every vertical gap (a band of x that none of its lines
   crosses) with a *text column* on both sides: at least ``min_column_rows`` rows (the lines
   of one row taken together) ``long_row`` line heights long or longer, which hold at least
   ``text_share`` of the side's row length; one side at least must pass even with its rows
   broken where lines lie ``cell_gap`` apart (running text, not a two-part table beside
   another). Tables, forms and receipts have gaps too, but few long rows, so they stay whole
   and are read row by row.
3. Spanning lines: a title, page header, footer or wide caption crossing the gutter hides it;
   the gutter is then a valley of the x-profile (a band of x fewer lines cross than on either
   side). When the region less the lines crossing a valley splits into columns, it is cut at
   the horizontal gaps just above and below each of them and every band is cut again: a
   heading is read before the columns under it, a footer after them.
4. Areas: a region that cannot split is an area (a column, or the band of a page above or
   below its columns), cut into blocks (paragraphs, headings, tables) at each horizontal gap
   ``band_gap`` line heights wider than its usual one (the lower quartile: the leading).
   Lines keep the order they came in, so a page without columns comes back as it was; on a
   page so skewed that image rows no longer hold its rows (``UprightPage.tilted``), a block
   is re-sorted into rows of the upright page. A block mostly of vertical lines (CJK set top
   to bottom) is read column by column, right to left.

Block kinds come from geometry: ``vertical``; ``table`` (half its rows or more, and two at
least, have pieces ``cell_gap`` line heights apart); ``title`` (one or two rows of type
``title_height`` times the page's line height, or one row over a text block, shorter than
``heading_share`` of its width and starting within it); else ``text``. The constants sit
inside measured plateaus (``bench/reading_order.py --sweep``: the same order on all 131 dev
pages for long_row 5-10.5, min_column_rows 9-21, text_share 0.1-0.7, cell_gap 0.3-5;
band_gap, 0.1-5, only sizes the blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike

from shared.document import Line
from worker.detect import reading_order as row_order
from worker.line_geometry import UprightPage, gaps, turn


@dataclass(frozen=True)
class Params:
    """The rules' constants, in line heights or shares (the module docstring)."""

    long_row: float = 8.0
    text_share: float = 0.5
    min_column_rows: int = 15
    band_gap: float = 0.25
    title_height: float = 1.25
    cell_gap: float = 1.0
    heading_share: float = 0.8
    vertical_ratio: float = 1.5


@dataclass(frozen=True)
class Block:
    """One block of lines.

    ``kind``: ``text``, ``title``, ``table`` or ``vertical``. ``box``: 4 (x, y) corners,
    clockwise from top-left in image pixels, of the rectangle around the block's lines on the
    upright page, turned back by the page's skew. ``lines``: indices into the input lines, in
    reading order. ``area``: the index of the area (a column, or a band above or below columns)
    the block lies in; an area's blocks follow one another.
    """

    kind: str
    box: tuple[tuple[float, float], ...]
    lines: tuple[int, ...]
    area: int


@dataclass(frozen=True)
class Layout:
    """A page's blocks in reading order; ``order``: all their lines, block after block;
    ``skew``: the page's angle in degrees (positive: text falls to the right)."""

    blocks: tuple[Block, ...]
    order: tuple[int, ...]
    skew: float


def analyse(boxes: ArrayLike, params: Params = Params()) -> Layout:
    """Blocks and reading order of one page's lines.

    Args:
        boxes: K boxes, each 4 [x, y] corners clockwise from top-left or 8 numbers (a K x 4 x 2
            array, or the ``box`` of each result line), in the detector's row order.
        params: the rules' constants.

    Returns:
        The page's Layout; ``order`` is a permutation of ``range(K)``.
    """
    quads = np.asarray(boxes, np.float64).reshape(-1, 4, 2)
    if not len(quads):
        return Layout((), (), 0.0)
    reader = _Reader(UprightPage.of(quads, params.vertical_ratio), params)
    areas: list[list[np.ndarray]] = []
    reader.cut(np.arange(len(quads)), areas)
    leaves = [(area, members) for area, blocks in enumerate(areas) for members in blocks]
    blocks = [reader.block(members, area) for area, members in leaves]
    for k in range(len(blocks) - 1):
        if blocks[k].kind == blocks[k + 1].kind == "text" and reader.heads(leaves[k][1], leaves[k + 1][1]):
            blocks[k] = Block("title", blocks[k].box, blocks[k].lines, blocks[k].area)
    order = tuple(i for block in blocks for i in block.lines)
    return Layout(tuple(blocks), order, round(float(np.degrees(reader.page.angle)), 2))


def ordered_lines(lines: Sequence[Line], params: Params = Params()) -> tuple[list[Line], Layout]:
    """A page's result lines (``PageResult.lines``, in the pipeline's row order) in reading
    order, and the Layout that ordered them (its indices refer to ``lines`` as given)."""
    layout = analyse([line.box for line in lines], params)
    return [lines[i] for i in layout.order], layout


@dataclass
class _Reader:
    """The cuts and reading of one upright page."""

    page: UprightPage
    params: Params

    def text_column(self, members: np.ndarray, max_gap: float = np.inf) -> bool:
        """Whether lines read as a column of running text (the module docstring, step 2);
        ``max_gap``: rows are runs of lines less than that apart."""
        lengths = self.page.row_lengths(members, max_gap)
        long = lengths >= self.params.long_row * self.page.height
        return int(long.sum()) >= self.params.min_column_rows and \
            lengths[long].sum() >= self.params.text_share * lengths.sum()

    def columns(self, members: np.ndarray) -> list[np.ndarray]:
        """``members`` split at the vertical gaps with a text column on both sides, left to
        right (each ascending); one group when there is none."""
        if len(members) < 2 * self.params.min_column_rows:
            return [members]
        rects = self.page.rects[members]
        cuts = [(a + b) / 2 for a, b in gaps(rects[:, 0], rects[:, 2])]
        side = np.searchsorted(cuts, (rects[:, 0] + rects[:, 2]) / 2)
        parts = [members[side == k] for k in range(len(cuts) + 1)]
        text = [self.text_column(part) for part in parts]
        cell_gap = self.params.cell_gap * self.page.height
        running = [text[k] and self.text_column(part, cell_gap) for k, part in enumerate(parts)]
        groups = [parts[0]]
        for k in range(1, len(parts)):
            if text[k - 1] and text[k] and (running[k - 1] or running[k]):
                groups.append(parts[k])
            else:
                groups[-1] = np.concatenate([groups[-1], parts[k]])
        return [np.sort(group) for group in groups]

    def cut(self, members: np.ndarray, areas: list[list[np.ndarray]]) -> None:
        """Append the areas of region ``members`` (ascending indices) in reading order, each as
        its blocks."""
        parts = self.columns(members)
        if len(parts) == 1:
            parts = self.spanning_cut(members) or parts
        if len(parts) == 1:
            areas.append(self.bands(members))
            return
        for part in parts:
            self.cut(part, areas)

    def spanning_cut(self, members: np.ndarray) -> list[np.ndarray] | None:
        """The region cut into bands, top to bottom, at the horizontal gaps just above and
        below each line that spans a gutter: the lines crossing the least covered band of x
        (a valley of the x-profile) whose removal lets the rest split into columns, when a band
        then does. None when no valley does (the module docstring, step 3)."""
        if len(members) < 2 * self.params.min_column_rows:
            return None
        rects = self.page.rects[members]
        for low, high in self.valleys(rects):
            crossing = (rects[:, 0] <= low) & (rects[:, 2] >= high)
            if len(self.columns(members[~crossing])) < 2:
                continue
            middles = [((top + bottom) / 2, top, bottom) for top, bottom in gaps(rects[:, 1], rects[:, 3])]
            around: set[float] = set()
            for y0, y1 in rects[crossing][:, [1, 3]]:
                above = [middle for middle, _, bottom in middles if bottom <= y0]
                below = [middle for middle, top, _ in middles if top >= y1]
                around.update(above[-1:] + below[:1])
            cuts = sorted(around)
            band = np.searchsorted(cuts, (rects[:, 1] + rects[:, 3]) / 2)
            parts = [members[band == k] for k in range(len(cuts) + 1) if (band == k).any()]
            if len(parts) > 1 and any(len(self.columns(part)) > 1 for part in parts):
                return parts
        return None

    def valleys(self, rects: np.ndarray) -> list[tuple[float, float]]:
        """The x intervals where fewer lines cross than on either side (and some do, at most
        ``min_column_rows``), least crossed first, then widest."""
        edges = np.concatenate([rects[:, 0], rects[:, 2]])
        steps = np.concatenate([np.ones(len(rects), int), -np.ones(len(rects), int)])
        rank = np.lexsort((steps, edges))
        edges, count = edges[rank], np.cumsum(steps[rank])
        runs: list[list[float]] = []   # [start, end, lines crossing], merged where equal
        for k in range(len(edges) - 1):
            if edges[k + 1] > edges[k]:
                if runs and runs[-1][2] == count[k]:
                    runs[-1][1] = edges[k + 1]
                else:
                    runs.append([edges[k], edges[k + 1], count[k]])
        found = [(run[2], run[0] - run[1], run[0], run[1]) for before, run, after in zip(runs, runs[1:], runs[2:])
                 if 0 < run[2] <= self.params.min_column_rows and run[2] < min(before[2], after[2])]
        return [(low, high) for _, _, low, high in sorted(found)]

    def bands(self, members: np.ndarray) -> list[np.ndarray]:
        """An area cut, top to bottom, at every horizontal gap ``band_gap`` line heights wider
        than the leading: the lower-quartile gap between its horizontal lines (wide in CJK
        books; none between the tiers of vertical text). Its blocks."""
        rects = self.page.rects[members]
        spaces = gaps(rects[:, 1], rects[:, 3])
        flat = rects[~self.page.vertical[members]]
        between = [bottom - top for top, bottom in gaps(flat[:, 1], flat[:, 3])]
        leading = float(np.percentile(between, 25)) if between else 0.0
        min_gap = leading + self.params.band_gap * self.page.height
        cuts = [(top + bottom) / 2 for top, bottom in spaces if bottom - top >= min_gap]
        band = np.searchsorted(cuts, (rects[:, 1] + rects[:, 3]) / 2)
        return [members[band == k] for k in range(len(cuts) + 1) if (band == k).any()]

    def read(self, members: np.ndarray) -> np.ndarray:
        """A block's lines in reading order (the module docstring, step 4)."""
        if self.page.is_vertical(members):
            rects = self.page.rects[members]
            # Columns of vertical text right to left: a line joins the column of the line
            # before it (by right edge) when they overlap in x by half the narrower one.
            by_right = np.argsort(-rects[:, 2], kind="stable")
            column, labels = 0, np.zeros(len(members), int)
            for prev, cur in pairwise(by_right):
                overlap = min(rects[prev, 2], rects[cur, 2]) - max(rects[prev, 0], rects[cur, 0])
                narrower = min(rects[prev, 2] - rects[prev, 0], rects[cur, 2] - rects[cur, 0])
                column += overlap < narrower / 2
                labels[cur] = column
            return members[np.lexsort((rects[:, 1], labels))]
        if self.page.tilted:
            return members[row_order(self.page.quads[members])]
        return members

    def block(self, members: np.ndarray, area: int) -> Block:
        """A Block of ``members``: ordered lines, kind and box in the image frame."""
        rects = self.page.rects[members]
        x0, y0 = rects[:, 0].min(), rects[:, 1].min()
        x1, y1 = rects[:, 2].max(), rects[:, 3].max()
        corners = turn(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), self.page.angle)
        box = tuple((round(float(x), 1), round(float(y), 1)) for x, y in corners)
        return Block(self.kind(members), box, tuple(int(i) for i in self.read(members)), area)

    def kind(self, members: np.ndarray) -> str:
        """What a block is from its own geometry (the module docstring); ``heads`` may still
        make a one-row text block a title."""
        if self.page.is_vertical(members):
            return "vertical"
        rects, rows = self.page.rects, self.page.rows(members)
        min_gap = self.params.cell_gap * self.page.height
        cells = sum(1 for row in rows if len(row) > 1
                    and (rects[row[1:], 0] - np.maximum.accumulate(rects[row[:-1], 2])).max() >= min_gap)
        if cells >= 2 and 2 * cells >= len(rows):
            return "table"
        sizes = np.minimum(rects[members, 2] - rects[members, 0], rects[members, 3] - rects[members, 1])
        if len(rows) <= 2 and float(np.median(sizes)) >= self.params.title_height * self.page.height:
            return "title"
        return "text"

    def heads(self, members: np.ndarray, following: np.ndarray) -> bool:
        """Whether a block is the heading of the block after it: one row above a block of two
        rows or more, starting within its width and shorter than ``heading_share`` of it."""
        if len(self.page.rows(members)) != 1 or len(self.page.rows(following)) < 2:
            return False
        head, body = self.page.rects[members], self.page.rects[following]
        left, right = body[:, 0].min(), body[:, 2].max()
        return bool(head[:, 3].max() <= body[:, 1].min() and left <= head[:, 0].min() < right
                    and head[:, 2].max() - head[:, 0].min() < self.params.heading_share * (right - left))
