"""Pages in any orientation (worker.orientation): a real receipt and a real two-column page
turned 90, 180 and 270 degrees read as the upright scan does, report the turn, and give boxes
in the pixels of the image as sent; an upside-down line on an upright page is read too."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from tests.helpers import eval_page
from worker.offline.evaluation import turn, upright_box
from worker.offline.scoring import normalize
from worker.orientation import page_vote, rotation_of, to_sent_frame, turn_upright
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image

RECEIPT = ("sroie_receipts", "000")
TEXTBOOK = ("omnidocbench_pages", "jiaocaineedrop_jiaocai_needrop_en_3361")


@pytest.fixture(scope="module")
def read(read_page):
    """(set, page id, clockwise degrees) -> (PageResult of the page turned so, upright image)."""
    return lambda *page: read_page(*page)[:2]


def _distance(a: str, b: str) -> float:
    a, b = normalize(a), normalize(b)
    return Levenshtein.distance(a, b) / max(len(b), 1)


@pytest.mark.parametrize("page", [RECEIPT, TEXTBOOK], ids=["receipt", "two-column page"])
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_page_reads_as_the_upright_one(read, page, degrees):
    upright, image = read(*page)
    turned, _ = read(*page, degrees)
    assert upright.rotation == 0 and turned.rotation == degrees
    assert _distance(turned.text, upright.text) <= 0.01, (turned.text[:300], upright.text[:300])
    h, w = turn(image, degrees).shape[:2]
    for line in turned.lines:  # boxes are in the pixels of the image as sent
        points = np.asarray(line.box)
        assert (points >= -1).all() and (points[:, 0] <= w).all() and (points[:, 1] <= h).all()
    # turned back into the upright frame, each line lies where the upright read found it
    centres = np.asarray([np.mean(line.box, axis=0) for line in upright.lines])
    for line in turned.lines:
        centre = np.mean(upright_box(line.box, degrees, image.shape), axis=0)
        nearest = int(np.argmin(np.linalg.norm(centres - centre, axis=1)))
        if upright.lines[nearest].text == line.text:
            assert np.linalg.norm(centres[nearest] - centre) <= 3


def test_an_upside_down_line_on_an_upright_page_is_read(read, pipelines, base_settings):
    """A strip of the receipt (two lines) turned 180 degrees in place, the rest upright."""
    upright, image = read(*RECEIPT)
    lines = sorted(upright.lines, key=lambda line: np.mean(line.box, axis=0)[1])
    chosen = [line for line in lines if len(normalize(line.text)) >= 8][len(lines) // 3]
    y0 = int(min(y for _, y in chosen.box)) - 2
    y1 = int(max(y for _, y in chosen.box)) + 2
    page = image.copy()
    page[y0:y1] = page[y0:y1][::-1, ::-1]
    result = pipelines[base_settings.default_model].run([PageTask(page, "page")])[0]
    assert result.rotation == 0
    inside = [line.text for line in result.lines if y0 <= np.mean(line.box, axis=0)[1] <= y1]
    assert any(_distance(text, chosen.text) <= 0.15 for text in inside), (inside, chosen.text)


def test_orientation_off_reads_a_turned_page_as_before(pipelines, base_settings):
    settings = dataclasses.replace(base_settings, orientation=False)
    pipeline = OcrPipeline(pipelines[base_settings.default_model].model, settings)
    image = decode_image(eval_page(*RECEIPT)[0], base_settings)
    result = pipeline.run([PageTask(turn(image, 180), "page")])[0]
    assert result.rotation == 0 and pipeline.classifier is None


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_boxes_turn_back_exactly(degrees):
    image = np.zeros((30, 50, 3), np.uint8)
    image[4, 7] = 255
    sent = turn(image, degrees)
    assert turn_upright(sent, degrees)[4, 7].all()
    x, y = to_sent_frame(np.array([7.0, 4.0]), degrees, image.shape)
    assert sent[int(y), int(x)].all()
    assert upright_box([(x, y)], degrees, image.shape) == [[7.0, 4.0]]


def _lines(tall: bool, count: int) -> np.ndarray:
    w, h = (20, 200) if tall else (200, 20)
    return np.asarray([[[0, 30 * i], [w, 30 * i], [w, 30 * i + h], [0, 30 * i + h]] for i in range(count)], float)


@pytest.mark.parametrize("tall, share", [(False, 0.0), (False, 1.0), (True, 0.0), (True, 1.0), (False, 0.3)])
def test_the_page_vote_is_the_lines_direction_and_length_weighted_share(tall, share):
    quads = _lines(tall, 10)
    flipped = (np.arange(10) < share * 10).astype(np.float32)
    assert page_vote(quads, flipped) == (tall, pytest.approx(share))
    assert page_vote(np.zeros((0, 4, 2)), np.zeros(0)) == (False, 0.0)


def test_sideways_pages_read_upright_at_90_and_upside_down_at_270():
    assert [rotation_of(s, u) for s, u in ((False, False), (False, True), (True, False), (True, True))] == \
        [0, 180, 90, 270]


@pytest.mark.parametrize("degrees", [0, 180])
def test_a_noisy_typewritten_form_the_classifier_misjudges_is_read_the_right_way_up(pipelines, base_settings,
                                                                                    degrees):
    """On this FUNSD form the classifier calls about half the longest lines upside down either
    way up; the recogniser's reading decides."""
    image = decode_image(eval_page("funsd_forms", "87137840")[0], base_settings)
    result = pipelines[base_settings.default_model].run([PageTask(turn(image, degrees), "page")])[0]
    assert result.rotation == degrees
