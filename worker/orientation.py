"""Which way up a page is: turned 0, 90, 180 or 270 degrees, and single lines upside down.

The detector finds text lines at any right angle. ``crop_quad`` gives every line crop the
long side across, turning tall crops (the lines of a page turned 90 or 270 degrees) a quarter
turn counter-clockwise, so a page's crops come out either upright or upside down. The 0/180
line classifier that ships in the rapidocr wheel (PP-OCR's ``ch_ppocr_mobile_v2.0_cls``, 48 x
192 input, output [N, 2] = p(0), p(180)) tells which, line by line, for the page's longest lines
(``voters``, ``page_vote``); where it finds any share of them upside down the recogniser reads
them both ways and the surer reading decides (``rotation_of``). A page found turned is turned
upright and detected again, so the layout rules see upright columns; boxes are turned back into
the pixels of the image the client sent (``to_sent_frame``). On an upright page a line the
the recogniser was unsure of and the classifier thinks upside down is read turned 180 degrees as
well, and the reading the recogniser is surer of kept (stamps, margin notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from worker.detect import TALL
from worker.engine import Engine

CLS_HEIGHT, CLS_WIDTH = 48, 192
CLS_BATCH = 32
# cv2.rotate codes that turn a page found turned by the key (clockwise degrees) upright.
UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


@dataclass(frozen=True)
class Params:
    """``doubt_share``: length-weighted share of the voting lines classified upside down from
    which the recogniser decides (it reads the voters both ways: a page read the wrong way up
    is garbage, so its confidence tells; the classifier alone misjudged noisy typewritten
    forms); ``voters``: how many of a page's longest lines vote (the classifier
    costs about as much per line as recognising a short one); ``recheck_below``: lines of an
    upright page the recogniser read below this confidence are classified, and ``line_flip``:
    those with p(180) above it are read turned too, the surer reading kept; ``tall``: height /
    width from which a crop is turned a quarter (as ``worker.detect.crop_quad`` does)."""

    doubt_share: float = 0.2
    line_flip: float = 0.9
    tall: float = TALL
    voters: int = 8
    recheck_below: float = 0.85


class LineClassifier:
    """The 0/180 line classifier (its session is built with the model's, ``worker.model_loading``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upside_down(self, crops: list[np.ndarray]) -> np.ndarray:
        """p(180) of each BGR line crop (as ``crop_quad`` cuts them): N floats in 0..1."""
        found = np.zeros(len(crops), np.float32)
        for start in range(0, len(crops), CLS_BATCH):
            batch = np.stack([_normalize(crop) for crop in crops[start:start + CLS_BATCH]])
            found[start:start + len(batch)] = self.engine(batch)[:, 1]
        return found


def _normalize(crop: np.ndarray) -> np.ndarray:
    """A crop resized to height 48 (width at most 192, aspect kept), scaled to -1..1 and padded
    right with zeros: 3 x 48 x 192 float32, as the classifier was trained."""
    h, w = crop.shape[:2]
    width = int(min(CLS_WIDTH, max(1, np.ceil(CLS_HEIGHT * w / max(h, 1)))))
    image = cv2.resize(crop, (width, CLS_HEIGHT)).astype(np.float32)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    out = np.zeros((3, CLS_HEIGHT, CLS_WIDTH), np.float32)
    out[:, :, :width] = (image.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def voters(quads: np.ndarray, params: Params = Params()) -> np.ndarray:
    """Indices of the page's longest lines (at most ``params.voters``), which vote on its turn."""
    if not len(quads):
        return np.zeros(0, np.int64)
    length = np.maximum(np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1), np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1))
    return np.sort(np.argsort(-length, kind="stable")[: params.voters])


def page_vote(quads: np.ndarray, flipped: np.ndarray, params: Params = Params()) -> tuple[bool, float]:
    """(sideways, share upside down) of a page from its voting lines' boxes (K x 4 x 2, corners
    clockwise from top-left as detected) and each line crop's p(180).

    Tall lines in the majority (by length) mean a page turned a quarter; ``share`` is the
    length-weighted share of the lines along the majority direction classified upside down.
    """
    if not len(quads):
        return False, 0.0
    widths = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1)
    heights = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    tall = heights >= params.tall * widths
    length = np.maximum(widths, heights)
    sideways = bool(length[tall].sum() > length[~tall].sum())
    members = tall if sideways else ~tall
    return sideways, float(length[members & (flipped > 0.5)].sum() / max(length[members].sum(), 1e-9))


def rotation_of(sideways: bool, upside_down: bool) -> int:
    """Clockwise degrees a page was turned by: sideways pages' crops are turned a quarter
    counter-clockwise, so they read upright at 90 and upside down at 270."""
    return {(False, False): 0, (False, True): 180, (True, False): 90, (True, True): 270}[(sideways, upside_down)]


def turn_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """The page turned back from ``rotation`` clockwise degrees."""
    return image if rotation == 0 else cv2.rotate(image, UPRIGHT[rotation])


def to_sent_frame(points: np.ndarray, rotation: int, upright_shape: tuple[int, ...]) -> np.ndarray:
    """Points (..., 2) [x, y] on the upright page (``upright_shape``: its H, W) in the pixels of
    the image as sent, which is the upright page turned ``rotation`` degrees clockwise."""
    points = np.asarray(points, np.float64)
    h, w = upright_shape[:2]
    x, y = points[..., 0], points[..., 1]
    if rotation == 90:
        x, y = (h - 1) - y, x
    elif rotation == 180:
        x, y = (w - 1) - x, (h - 1) - y
    elif rotation == 270:
        x, y = y, (w - 1) - x
    return np.stack([x, y], axis=-1)
