"""Text detection with a DBNet model: preprocessing, box extraction, crops and reading order.

DBNet outputs a text-probability map; lines are the connected regions above ``thresh`` whose
mean probability reaches ``box_thresh``. The shrunk regions it predicts are grown back
("unclipped") by ``area * unclip_ratio / perimeter`` on each side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DET_STRIDE = 32
MIN_BOX_SIDE = 3
MAX_CANDIDATES = 1000


@dataclass(frozen=True)
class DetParams:
    """Post-processing knobs, taken from Settings."""

    max_side: int
    min_side: int
    thresh: float
    box_thresh: float
    unclip_ratio: float


def det_preprocess(image: np.ndarray, max_side: int, min_side: int = 0) -> tuple[np.ndarray, float, float]:
    """Resize so the longer side is at most ``max_side`` and both sides are multiples of 32.

    Narrow images (receipts) whose shorter side would fall under ``min_side`` are enlarged
    towards it, as far as ``max_side`` allows: small print needs the pixels to be detected.

    Args:
        image: H x W x 3 uint8 BGR.

    Returns:
        ``(tensor, sx, sy)``: 1 x 3 x H' x W' float32 in [-1, 1], and the factors mapping map
        coordinates back to the image (x_image = x_map * sx).
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if min(h, w) * scale < min_side:
        scale = min(min_side / min(h, w), max_side / max(h, w))
    new_h = max(DET_STRIDE, int(round(h * scale / DET_STRIDE)) * DET_STRIDE)
    new_w = max(DET_STRIDE, int(round(w * scale / DET_STRIDE)) * DET_STRIDE)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    tensor = resized.astype(np.float32).transpose(2, 0, 1)[None]
    tensor *= 2.0 / 255.0
    tensor -= 1.0
    return np.ascontiguousarray(tensor), w / new_w, h / new_h


def db_boxes(prob: np.ndarray, params: DetParams, sx: float, sy: float, image_shape: tuple[int, ...]):
    """Extract text boxes from a probability map.

    Args:
        prob: H x W float32 probability map.
        sx, sy: map-to-image scale factors.
        image_shape: shape of the original image, for clipping.

    Returns:
        ``(quads, scores)``: K x 4 x 2 float32 corner points (clockwise from top-left) in image
        coordinates, and K box scores.
    """
    mask = (prob > params.thresh).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quads, scores = [], []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_BOX_SIDE:
            continue
        score = _box_score(prob, contour)
        if score < params.box_thresh:
            continue
        grow = rw * rh * params.unclip_ratio / (2.0 * (rw + rh))
        rw, rh = rw + 2 * grow, rh + 2 * grow
        if min(rw, rh) < MIN_BOX_SIDE + 2:
            continue
        quad = _order_corners(cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        quad[:, 0] = np.clip(quad[:, 0] * sx, 0, image_shape[1] - 1)
        quad[:, 1] = np.clip(quad[:, 1] * sy, 0, image_shape[0] - 1)
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, np.float32)


def _box_score(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean probability inside the contour's bounding rectangle, masked by the contour."""
    x, y, w, h = cv2.boundingRect(contour)
    region = prob[y : y + h, x : x + w]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(region, mask)[0])


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Order 4 points as top-left, top-right, bottom-right, bottom-left."""
    pts = points[np.argsort(points[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], np.float32)


# A crop this many times taller than wide is a vertical or turned line: it is read turned a quarter.
TALL = 1.5


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Cut a (possibly rotated) quadrilateral out of ``image`` as an upright rectangle.

    Crops much taller than wide are vertical text or a rotated line: they are turned 90°
    so the recogniser reads along the long side.
    """
    width, height = _sides(quad)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE,
                               flags=cv2.INTER_CUBIC)
    if read_along_height(quad):
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def read_along_height(quad: np.ndarray) -> bool:
    """Whether ``crop_quad`` turns this quad's crop a quarter (counterclockwise): its width
    then runs along the quad's edge from corner 0 to corner 3."""
    width, height = _sides(quad)
    return height >= TALL * width


def _sides(quad: np.ndarray) -> tuple[int, int]:
    """A quad's width (edges 0-1, 3-2) and height (edges 0-3, 1-2) in whole pixels, >= 1."""
    width = int(round(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2]))))
    height = int(round(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))))
    return max(width, 1), max(height, 1)


def reading_order(quads: np.ndarray) -> np.ndarray:
    """Indices of ``quads`` (K x 4 x 2) top-to-bottom, then left-to-right within a row.

    Boxes whose centres lie within half the median box height of a row's first box join
    that row, so slightly skewed lines of one row keep their left-to-right order.
    """
    if len(quads) == 0:
        return np.zeros((0,), np.int64)
    centres = quads.mean(axis=1)
    heights = np.linalg.norm(quads[:, 0] - quads[:, 3], axis=1)
    tolerance = max(float(np.median(heights)) / 2.0, 1.0)
    by_y = np.argsort(centres[:, 1], kind="stable")
    rows: list[list[int]] = []
    row_y = None
    for idx in by_y:
        y = centres[idx, 1]
        if row_y is None or y - row_y > tolerance:
            rows.append([])
            row_y = y
        rows[-1].append(int(idx))
    return np.array([i for row in rows for i in sorted(row, key=lambda k: centres[k, 0])], np.int64)
