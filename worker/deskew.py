"""Pages scanned a few degrees off: turned level before their lines are found.

The detector finds tilted lines, but on a page skewed by several degrees neighbouring lines and
columns run into each other: boxes merge across rows, short lines are missed, and columns are
cut in the wrong places. A page whose first-pass line boxes lean by at least
``Params.min_degrees`` (``worker.line_geometry.skew_angle``) is turned level about its centre,
cut to the text found plus a margin (``level``), detected again, and its boxes are mapped
back into the page's own pixels (``to_page_frame``); line crops come from the level page.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Params:
    """``min_degrees``: the least skew that is corrected (below it, tilted boxes cost nothing:
    the crops are cut along each box and the layout rules turn boxes upright themselves);
    ``max_degrees``: more than this is not a skew but a page turned (``worker.orientation``);
    ``margin``: the level page keeps this share of the page's long side around the text found."""

    min_degrees: float = 1.5
    max_degrees: float = 30.0
    margin: float = 0.03


def needs_leveling(angle: float, params: Params = Params()) -> bool:
    """Whether a page skewed by ``angle`` radians is turned level before detection."""
    return params.min_degrees <= abs(np.degrees(angle)) <= params.max_degrees


def level(image: np.ndarray, angle: float, quads: np.ndarray, params: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """The page turned by ``-angle`` radians (its text level), cut to the text found so far
    plus a margin, and the 2 x 3 affine matrix from page pixels to the level image's pixels.

    Cutting to the text keeps the detector's scale: a level canvas that held every corner of a
    page skewed by 10 degrees would be about 1.2 times larger, so shrunk more under the
    detector's input limit. What the canvas gains beyond the page is filled with the page's
    border colour.

    Args:
        image: H x W x 3 uint8 BGR page.
        angle: the page's skew, radians, positive when text falls to the right.
        quads: K x 4 x 2 line boxes found on ``image`` (K >= 1).
    """
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(np.degrees(angle)), 1.0)
    found = quads.reshape(-1, 2) @ matrix[:, :2].T + matrix[:, 2]
    margin = params.margin * max(h, w)
    x0, y0 = np.floor(found.min(axis=0) - margin)
    x1, y1 = np.ceil(found.max(axis=0) + margin)
    matrix[:, 2] -= (x0, y0)
    leveled = cv2.warpAffine(image, matrix, (int(x1 - x0) + 1, int(y1 - y0) + 1), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=_border_colour(image))
    return leveled, matrix


def to_page_frame(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (... x 2, level-canvas pixels) in the pixels of the page ``level`` turned with
    ``matrix``: float32, same shape."""
    inverse = cv2.invertAffineTransform(matrix)
    points = np.asarray(points, np.float64)
    return (points @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)


def _border_colour(image: np.ndarray) -> tuple[float, ...]:
    """Median colour of the page's outermost rows and columns (the paper, on a scan)."""
    pixels = image.reshape(image.shape[0], image.shape[1], -1)
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(float(v) for v in np.median(edge, axis=0))
