"""Pure units of the pipeline: CTC decoding, chunk planning, widths, reading order, boxes."""

from __future__ import annotations

import numpy as np
import pytest

from shared.settings import Settings
from worker.ctc import Hint, ctc_greedy_decode
from worker.lexicon import Lexicon
from worker.detect import DetParams, crop_quad, db_boxes, det_preprocess, reading_order
from worker.preprocess import rec_width
from worker.recognize import plan_chunks, slot_width

VOCAB = ["<blank>", "a", "b", " "]


def one_hot(ids: list[int], classes: int = 4, p: float = 0.9) -> np.ndarray:
    probs = np.full((len(ids), classes), (1 - p) / (classes - 1), np.float32)
    probs[np.arange(len(ids)), ids] = p
    return probs


def test_ctc_collapses_repeats_drops_blanks_and_ignores_padding_steps():
    probs = np.stack([one_hot([1, 1, 0, 1, 2, 2, 3, 2]), one_hot([2, 0, 2, 1, 1, 1, 1, 1])])
    assert [reading[:2] for reading in ctc_greedy_decode(probs, [8, 3], VOCAB)] == [
        ("aab b", pytest.approx(0.9)), ("bb", pytest.approx(0.9))]


def test_ctc_charset_restricts_the_argmax_per_line():
    probs = np.stack([one_hot([2, 2, 1]), one_hot([2, 2, 1])])
    only_a = np.array([0, 1])
    hints = [Hint(only_a), Hint()]
    assert [reading.text for reading in ctc_greedy_decode(probs, [3, 3], VOCAB, hints)] == ["a", "ba"]


def test_ctc_auto_hint_restricts_only_the_lines_that_read_as_english():
    probs = np.stack([one_hot([1, 2, 0]), one_hot([2, 2, 1])])  # read over every class: "ab", "ba"
    auto = Hint(np.array([0, 1]), None, Lexicon({"ab": 1}))  # English here: the word "ab"
    assert [reading.text for reading in ctc_greedy_decode(probs, [3, 3], VOCAB, [auto, auto])] == ["a", "ba"]


def test_ctc_empty_line_has_zero_confidence():
    assert ctc_greedy_decode(one_hot([0, 0, 0])[None], [3], VOCAB) == [("", 0.0, ())]


def test_plan_chunks_sorts_by_width_and_respects_the_budget():
    widths = [400, 80, 1600, 80, 400, 400, 800]
    chunks = plan_chunks(widths, budget=1000)
    assert chunks == [[1, 3], [0, 4], [5], [6], [2]]


def test_plan_chunks_are_powers_of_two_so_shapes_recur():
    sizes = [len(chunk) for chunk in plan_chunks([64] * 7 + [128] * 12, budget=100_000)]
    assert sizes == [4, 2, 1, 8, 4]
    assert sorted(i for chunk in plan_chunks([64] * 7, budget=256) for i in chunk) == list(range(7))
    assert [len(chunk) for chunk in plan_chunks([64] * 7, budget=256)] == [4, 2, 1]


def test_plan_chunks_never_pads_a_line_for_a_batch_mate():
    widths = [400, 408, 416, 400, 408]
    assert plan_chunks(widths, budget=100_000) == [[0, 3], [1, 4], [2]]


def test_slot_width_rounds_line_and_tail_up_to_the_bucket():
    assert slot_width(100, 16, 32) == 128
    assert slot_width(112, 16, 32) == 128
    assert slot_width(113, 16, 32) == 160
    assert slot_width(100, 0, 8) == 104


def test_rec_width_keeps_aspect_in_steps_of_8_and_caps():
    assert rec_width((24, 100, 3), 48, 4096) == 200
    assert rec_width((48, 10, 3), 48, 4096) == 16
    assert rec_width((10, 10000, 3), 48, 4096) == 4096
    assert rec_width((24, 100, 3), 48, 4096, scale=0.85) == 176  # 170 up to the next step


def test_width_scale_comes_from_the_model_unless_set():
    from shared.errors import ConfigError
    from shared.models import BUILTIN

    assert BUILTIN["ppocrv6-small"].rec_width_scale == 0.85
    assert BUILTIN["ppocrv6-tiny"].rec_width_scale == 1.0
    assert Settings.from_env({}).rec_width_scale == 0.0
    assert Settings.from_env({"OCR_REC_WIDTH_SCALE": "1"}).rec_width_scale == 1.0
    with pytest.raises(ConfigError, match="OCR_REC_WIDTH_SCALE"):
        Settings.from_env({"OCR_REC_WIDTH_SCALE": "0.1"})


def test_reading_order_rows_then_columns():
    def box(x, y, w=50, h=10):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    quads = np.array([box(200, 52), box(0, 50), box(0, 0), box(100, 2)], np.float32)
    assert reading_order(quads).tolist() == [2, 3, 1, 0]


def test_db_boxes_find_a_text_blob_and_scale_it_back():
    prob = np.zeros((64, 128), np.float32)
    prob[20:30, 10:100] = 0.9
    params = DetParams(max_side=2000, min_side=0, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6)
    quads, scores = db_boxes(prob, params, sx=2.0, sy=2.0, image_shape=(128, 256, 3))
    assert quads.shape == (1, 4, 2) and scores[0] > 0.5
    (x0, y0), (x1, y1) = quads[0].min(axis=0), quads[0].max(axis=0)
    assert x0 < 20 < 200 < x1 and y0 < 40 < 60 < y1  # unclipped beyond the blob, in image pixels


def test_det_preprocess_limits_the_long_side_to_multiples_of_32():
    tensor, sx, sy = det_preprocess(np.zeros((7000, 500, 3), np.uint8), max_side=2000)
    assert tensor.shape[2] == 1984 and tensor.shape[3] % 32 == 0 and tensor.dtype == np.float32
    assert sy == pytest.approx(7000 / 1984)


def test_tall_crops_are_turned_to_read_along_the_long_side():
    image = np.zeros((300, 100, 3), np.uint8)
    quad = np.array([[10, 10], [40, 10], [40, 200], [10, 200]], np.float32)
    assert crop_quad(image, quad).shape[:2] == (30, 190)


def test_manifest_entries_skip_unknown_keys_and_check_the_width_scale():
    from shared.models import BUILTIN, ModelSpec

    entry = {**BUILTIN["ppocrv6-small"].to_dict(), "name": "x", "written_by_a_newer_release": 1}
    assert ModelSpec.from_dict(entry).rec_width_scale == 0.85
    with pytest.raises(ValueError, match="rec_width_scale"):
        ModelSpec.from_dict({**entry, "rec_width_scale": 0})


def test_an_empty_hint_is_the_deployments_default_and_an_unknown_one_is_refused(pipelines, settings):
    from shared.errors import BadOptionError
    from worker.pipeline import OcrPipeline

    model = pipelines["ppocrv6-small"].model
    assert OcrPipeline(model, settings.replace(default_lang="all")).hint("") == Hint()
    auto = OcrPipeline(model, settings).hint("")
    assert auto.detect is not None and auto.classes is not None and settings.default_lang == "auto"
    with pytest.raises(BadOptionError):
        OcrPipeline(model, settings).hint("klingon")


def test_spread_halves_chunks_until_every_stream_has_one():
    from worker.recognize import spread

    assert spread([[0, 1, 2, 3]], 2) == [[0, 1], [2, 3]]
    assert spread([[0, 1], [2]], 2) == [[0, 1], [2]]
    assert spread([[0, 1], [2]], 4) == [[0], [1], [2]]
    assert spread([[5]], 2) == [[5]] and spread([], 2) == []
    assert spread([[0, 1, 2, 3]], 1) == [[0, 1, 2, 3]]
