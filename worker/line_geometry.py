"""A page's text-line boxes turned upright: skew, rectangles, rows and whitespace gaps.

``worker.reading_order`` cuts pages along the gaps between line boxes; on a page scanned a few
degrees off, tilted lines overlap their neighbours' rows and columns in the image frame, so the
cuts work on the boxes turned upright by the page's skew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def skew_angle(quads: np.ndarray) -> float:
    """The page's angle in radians (positive: text falls to the right, in image coordinates
    where y grows downward): the median angle of the top edges of the boxes at least twice as
    wide as high, each weighted by its length; 0 when there are none.

    Args:
        quads: K x 4 x 2 float corners, clockwise from top-left.
    """
    top = quads[:, 1] - quads[:, 0]
    length = np.hypot(top[:, 0], top[:, 1])
    side = np.hypot(*(quads[:, 3] - quads[:, 0]).T)
    wide = length >= 2 * side
    if not wide.any():
        return 0.0
    angles = np.arctan2(top[wide, 1], top[wide, 0])
    rank = np.argsort(angles)
    weight = np.cumsum(length[wide][rank])
    return float(angles[rank][np.searchsorted(weight, weight[-1] / 2)])


def turn(points: np.ndarray, angle: float) -> np.ndarray:
    """``points`` (... x 2) turned by ``angle`` radians about the origin (image coordinates)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def gaps(low: np.ndarray, high: np.ndarray, min_gap: float = 0.0) -> list[tuple[float, float]]:
    """The empty intervals between extents [low_i, high_i] on one axis, at least ``min_gap``
    wide (any width above 0 when 0), in increasing order."""
    found, reach = [], None
    for i in np.argsort(low, kind="stable"):
        if reach is not None and low[i] - reach > 0 and low[i] - reach >= min_gap:
            found.append((float(reach), float(low[i])))
        reach = high[i] if reach is None else max(reach, high[i])
    return found


@dataclass
class UprightPage:
    """Line boxes on the page turned upright.

    ``angle``: the skew (radians) they were turned back by. ``rects``: K x 4 float64 x0, y0,
    x1, y1. ``quads``: K x 4 x 2 float32 corners. ``height``: the median text size (the short
    side of the rectangles), pixels. ``vertical``: K booleans, boxes at least
    ``vertical_ratio`` times taller than wide (text set top to bottom).
    """

    angle: float
    rects: np.ndarray
    quads: np.ndarray
    height: float
    vertical: np.ndarray

    @classmethod
    def of(cls, quads: np.ndarray, vertical_ratio: float) -> UprightPage:
        """Turn K x 4 x 2 corners upright by their own skew (``skew_angle``)."""
        angle = skew_angle(quads)
        upright = turn(quads, -angle)
        rects = np.concatenate([upright.min(axis=1), upright.max(axis=1)], axis=1)
        width, tall = rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1]
        height = max(float(np.median(np.minimum(width, tall))), 1.0)
        return cls(angle, rects, upright.astype(np.float32), height, tall >= vertical_ratio * width)

    @property
    def tilted(self) -> bool:
        """Whether the skew lifts one end of the text by more than half a line height, the
        tolerance row order groups a row with: then image rows no longer hold its rows."""
        span = float(self.rects[:, 2].max() - self.rects[:, 0].min())
        return span * abs(np.tan(self.angle)) > self.height / 2

    def rows(self, members: np.ndarray) -> list[np.ndarray]:
        """``members`` (line indices) in rows, top to bottom, each left to right: a line joins
        the row whose first line's centre lies within half a line height of its own."""
        rects = self.rects[members]
        centre = (rects[:, 1] + rects[:, 3]) / 2
        rows: list[list[int]] = []
        row_y = None
        for i in np.argsort(centre, kind="stable"):
            if row_y is None or centre[i] - row_y > self.height / 2:
                rows.append([])
                row_y = centre[i]
            rows[-1].append(int(i))
        return [members[sorted(row, key=lambda i: rects[i, 0])] for row in rows]

    def row_lengths(self, members: np.ndarray, max_gap: float = np.inf) -> np.ndarray:
        """Length of each row of ``members``, from its leftmost to its rightmost pixel; with
        ``max_gap``, of each run of a row's lines less than ``max_gap`` apart (a row of table
        cells is then several short runs, a line the detector split at a space one)."""
        lengths = []
        for row in self.rows(members):
            start, end = self.rects[row[0], 0], self.rects[row[0], 2]
            for x0, x1 in self.rects[row[1:]][:, [0, 2]]:
                if x0 - end >= max_gap:
                    lengths.append(end - start)
                    start = x0
                end = max(end, x1)
            lengths.append(end - start)
        return np.asarray(lengths)

    def is_vertical(self, members: np.ndarray) -> bool:
        """Whether most of two or more lines are vertical text."""
        return self.vertical[members].sum() * 2 > len(members) >= 2
