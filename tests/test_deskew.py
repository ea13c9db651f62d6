"""Skewed pages (worker.deskew): a real two-column page and a receipt scanned 10 degrees off
read as the level scans do, report their skew, and give boxes in the pixels of the image as
sent; a skewed newspaper keeps its columns; the level page's geometry maps back exactly."""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np
import pytest

from tests.helpers import eval_page
from worker.deskew import level, needs_leveling, to_page_frame
from worker.offline.evaluation import turn, upright_box
from worker.offline.page_scores import PageScores
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image

RECEIPT = ("sroie_receipts", "000")
TEXTBOOK = ("omnidocbench_pages", "jiaocaineedrop_jiaocai_needrop_en_3361")
NEWSPAPER = ("omnidocbench_pages", "newspaper_5e266dfd9c498cab274e12a7b4a75755_4")


@pytest.fixture(scope="module")
def read(pipelines, base_settings):
    """(set, page id, clockwise degrees, deskew) -> (PageResult of the page turned so, level image)."""

    @functools.cache
    def run(name: str, page_id: str, degrees: float = 0, deskew: bool = True):
        settings = dataclasses.replace(base_settings, deskew=deskew)
        pipeline = OcrPipeline(pipelines[base_settings.default_model].model, settings)
        image = decode_image(eval_page(name, page_id)[0], base_settings)
        result = pipeline.run([PageTask(turn(image, degrees), "page")])[0]
        assert not isinstance(result, BaseException), result
        return result, image

    return run


def _scores(result, page, degrees: float, image: np.ndarray) -> dict:
    """The page's gt-region and reading-order CER, boxes turned back to the level scan."""
    scores = PageScores(ignore_case=page[0] == "sroie_receipts")
    labels = [label for label in eval_page(*page)[1] if not label.get("ignore")]
    scores.add([line.text for line in result.lines], [upright_box(line.box, degrees, image.shape)
                                                      for line in result.lines], labels, image.shape)
    return scores.figures()


@pytest.mark.parametrize("page", [RECEIPT, TEXTBOOK], ids=["receipt", "two-column page"])
@pytest.mark.parametrize("degrees", [-10, 10])
def test_a_skewed_page_reads_as_the_level_one(read, page, degrees):
    """Against the labels, as well as the level scan within 0.01 (the skewed page is resampled:
    single characters come and go either way), in the same reading order."""
    level_read, image = read(*page)
    skewed, _ = read(*page, degrees)
    assert skewed.rotation == 0 and abs(skewed.skew - degrees) <= 1.5, skewed.skew
    level_scores, skewed_scores = _scores(level_read, page, 0, image), _scores(skewed, page, degrees, image)
    for score in ("cer_gt_region", "cer_reading_order"):
        assert skewed_scores[score] <= level_scores[score] + 0.01, (score, skewed_scores, level_scores)
    h, w = turn(image, degrees).shape[:2]
    texts = [line.text for line in level_read.lines] + [line.text for line in skewed.lines]
    level_boxes = {line.text: np.asarray(line.box, np.float32) for line in level_read.lines
                   if texts.count(line.text) == 2}  # lines read once on each page, the same
    for line in skewed.lines:  # boxes are in the pixels of the image as sent ...
        points = np.asarray(line.box)
        assert (points >= -2).all() and (points[:, 0] <= w + 2).all() and (points[:, 1] <= h + 2).all()
        # ... and, turned back, lie on the level scan's box of the same line
        if line.text in level_boxes:
            centre = np.mean(upright_box(line.box, degrees, image.shape), axis=0)
            inside = cv2.pointPolygonTest(level_boxes[line.text], tuple(map(float, centre)), True)
            assert inside >= -2, (line.text, centre, level_boxes[line.text])


def test_a_skewed_newspaper_keeps_its_columns(read):
    """Read as sent at -10 degrees, this page's columns run into each other (reading-order CER
    0.52); turned level first, it reads in column order as the level scan does (0.03)."""
    _, image = read(*NEWSPAPER)
    leveled, as_sent = read(*NEWSPAPER, -10)[0], read(*NEWSPAPER, -10, False)[0]
    assert _scores(leveled, NEWSPAPER, -10, image)["cer_reading_order"] <= 0.05
    assert _scores(as_sent, NEWSPAPER, -10, image)["cer_reading_order"] >= 0.2


@pytest.mark.parametrize("degrees", [-12.5, 3.0, 25.0])
def test_the_level_page_maps_back_exactly(degrees):
    image = np.full((300, 400, 3), 255, np.uint8)
    quads = np.array([[[50, 60], [350, 60], [350, 80], [50, 80]], [[60, 200], [300, 200], [300, 230], [60, 230]]],
                     np.float32)
    leveled, matrix = level(image, np.radians(degrees), quads)
    on_level = quads.reshape(-1, 2) @ matrix[:, :2].T + matrix[:, 2]
    assert (on_level >= 0).all() and (on_level[:, 0] < leveled.shape[1]).all()
    assert (on_level[:, 1] < leveled.shape[0]).all()
    assert np.allclose(to_page_frame(on_level, matrix), quads.reshape(-1, 2), atol=1e-3)
    assert leveled[0, 0].tolist() == [255, 255, 255]  # the canvas beyond the page is the paper


def test_only_skews_between_the_limits_are_leveled():
    assert [needs_leveling(np.radians(d)) for d in (0.5, -1.0, 1.5, -10.0, 30.0, 45.0)] == \
        [False, False, True, True, True, False]
