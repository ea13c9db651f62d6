"""Reading order and blocks (worker.reading_order) and reading-order scoring
(worker.offline.reading_scoring): real scans through the real pipeline, and synthetic boxes for each
rule. The figures of every page set are measured in bench/reading_order.py."""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest

from shared.document import Line, ResultDocument, joined_text
from tests.helpers import eval_page
from worker.detect import reading_order as row_order
from worker.line_geometry import gaps, turn
from worker.offline.reading_scoring import (
    oracle_order,
    page_order_scores,
    reference_blocks,
)
from worker.pipeline import PageTask
from worker.preprocess import decode_image
from worker.reading_order import analyse, ordered_lines

TEXTBOOK = "jiaocaineedrop_jiaocai_needrop_en_3361"   # two columns, Chinese, fuzzy scan
NEWSPAPER = "newspaper_5e266dfd9c498cab274e12a7b4a75755_4"  # three columns under a header


@pytest.fixture(scope="module")
def ocr(pipelines, base_settings):
    """(set, page id, degrees, keep top share) -> (the pipeline's lines in the detector's row
    order, which the reading order starts from, labels, image shape, the PageResult): the page
    turned by ``degrees`` (white corners) and cut to its top part. Checks on the way that the
    pipeline returns those lines in reading order."""
    pipeline = pipelines[base_settings.default_model]

    @functools.cache
    def run(name: str, page_id: str, degrees: float = 0.0, top: float = 1.0):
        data, labels = eval_page(name, page_id)
        image = decode_image(data, base_settings)
        labels = [label for label in labels if not label.get("ignore")]
        if top < 1.0:
            image = image[: int(image.shape[0] * top)]
            labels = [label for label in labels if max(label["box"][1::2]) < image.shape[0]]
        if degrees:
            h, w = image.shape[:2]
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
            image = cv2.warpAffine(image, matrix, (w, h), borderValue=(255, 255, 255))
            labels = [dict(label, box=_apply(matrix, label["box"])) for label in labels]
        result = pipeline.run([PageTask(image, "page")])[0]
        assert not isinstance(result, BaseException), result
        rows = [result.lines[i] for i in row_order(np.asarray([line.box for line in result.lines], np.float32))]
        assert ordered_lines(rows)[0] == result.lines, "the pipeline returns its lines in reading order"
        return rows, labels, image.shape[:2], result

    return run


@pytest.fixture(scope="module")
def read(ocr):
    """As ``ocr``, without the PageResult."""
    return lambda *args, **kwargs: ocr(*args, **kwargs)[:3]


def _apply(matrix: np.ndarray, box) -> list[float]:
    points = np.asarray(box, np.float64).reshape(-1, 2)
    return (points @ matrix[:, :2].T + matrix[:, 2]).reshape(-1).tolist()


def _column_ranks(lines, labels, layout, count: int, top: float = 0.0) -> list[tuple[int, int]]:
    """(first, last) reading position of the lines in each of ``count`` columns below ``top``:
    the columns are split at the widest gaps between the labelled text blocks' spans, and a
    line crossing a gap (a spanning one) belongs to none."""
    spans = np.asarray([[min(label["box"][0::2]), max(label["box"][0::2])] for label in labels
                        if label.get("block") == "text_block" and min(label["box"][1::2]) > top])
    widest = sorted(gaps(spans[:, 0], spans[:, 1]), key=lambda gap: gap[0] - gap[1])[: count - 1]
    cuts = sorted((a + b) / 2 for a, b in widest)
    rank = {line: position for position, line in enumerate(layout.order)}
    members: list[list[int]] = [[] for _ in range(count)]
    for i, line in enumerate(lines):
        x = [x for x, _ in line.box]
        if min(y for _, y in line.box) > top and not any(min(x) < cut < max(x) for cut in cuts):
            members[int(np.searchsorted(cuts, np.mean(x)))].append(rank[i])
    return [(min(column), max(column)) for column in members]


def _cer(lines, labels, shape, order) -> float:
    texts, boxes = [line.text for line in lines], [line.box for line in lines]
    return page_order_scores(texts, boxes, labels, shape, {"order": order})["order"].cer


def test_a_two_column_page_reads_column_by_column(read):
    lines, labels, shape = read("omnidocbench_pages", TEXTBOOK)
    layout = analyse([line.box for line in lines])
    (_, left_last), (right_first, _) = _column_ranks(lines, labels, layout, 2)
    assert left_last < right_first, "a line of the right column is read before the left column ends"
    assert _cer(lines, labels, shape, layout.order) <= 0.15
    assert _cer(lines, labels, shape, range(len(lines))) >= 0.5, "row order no longer mixes the columns up"


def test_a_three_column_newspaper_reads_column_by_column_after_its_header(read):
    lines, labels, shape = read("omnidocbench_pages", NEWSPAPER, top=0.45)
    layout = analyse([line.box for line in lines])
    header = min(range(len(lines)), key=lambda i: lines[i].box[0][1])
    ranks = _column_ranks(lines, labels, layout, 3, top=max(y for _, y in lines[header].box))
    assert layout.order.index(header) < ranks[0][0], "the header is not read first"
    assert ranks[0][1] < ranks[1][0] and ranks[1][1] < ranks[2][0], ranks
    assert _cer(lines, labels, shape, layout.order) <= 0.1


@pytest.mark.parametrize("name, page_id", [("omnidocbench_pages", "notes_f7f010b78016aeebd76e56d9283eb67f_49"),
                                           ("sroie_receipts", "000")])
def test_a_single_column_page_keeps_the_row_order(read, name, page_id):
    lines, _, _ = read(name, page_id)
    ordered, layout = ordered_lines(lines)
    assert layout.order == tuple(range(len(lines))) and ordered == lines
    assert len({block.area for block in layout.blocks}) == 1


def test_a_scan_turned_8_degrees_keeps_its_columns(read):
    lines, labels, shape = read("omnidocbench_pages", TEXTBOOK, degrees=8)
    layout = analyse([line.box for line in lines])
    assert layout.skew == pytest.approx(8, abs=1.5)
    assert len({block.area for block in layout.blocks}) > 1
    assert _cer(lines, labels, shape, layout.order) <= 0.15
    assert _cer(lines, labels, shape, range(len(lines))) >= 0.5, "row order no longer mixes the columns up"


def test_the_result_document_carries_the_blocks_in_reading_order(ocr):
    """Blocks index the lines, which run block after block; ``text`` puts a blank line between
    blocks; the document round trips through its contract."""
    *_, result = ocr("omnidocbench_pages", TEXTBOOK)
    blocks = result.blocks
    assert len(blocks) >= 2 and {block.kind for block in blocks} <= {"text", "title", "table", "vertical"}
    assert [i for block in blocks for i in block.lines] == list(range(len(result.lines)))
    assert result.text == "\n\n".join("\n".join(result.lines[i].text for i in block.lines) for block in blocks)
    for block in blocks:
        corners = np.asarray(block.box)
        inside = np.asarray([result.lines[i].box for i in block.lines]).reshape(-1, 2)
        assert (inside >= corners.min(axis=0) - 1).all() and (inside <= corners.max(axis=0) + 1).all()
    document = ResultDocument(text=result.text, lines=tuple(result.lines), blocks=tuple(result.blocks),
                              skew=result.skew)
    assert ResultDocument.from_json(json.loads(json.dumps(document.to_json()))) == document


def test_line_jobs_and_older_documents_have_no_blocks():
    lines = (Line("a", 0.9, ((0, 0), (9, 0), (9, 9), (0, 9))), Line("b", 0.9, ((0, 20), (9, 20), (9, 29), (0, 29))))
    assert joined_text(lines, ()) == "a\nb"
    older = ResultDocument.from_json({"text": "a\nb", "lines": [line.to_json() for line in lines]})
    assert older.blocks == () and older.skew == 0.0


# ---- synthetic boxes: one rule each ------------------------------------------------------

def _box(x: float, y: float, w: float, h: float = 20.0) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def _column(x: float, y: float, rows: int, width: float = 300.0) -> list:
    return [_box(x, y + 26 * k, width) for k in range(rows)]


def _in_row_order(*parts) -> tuple[np.ndarray, list[int]]:
    """The boxes of ``parts`` as the detector hands them over (row order), and for each the
    part it came from."""
    boxes = np.asarray([box for part in parts for box in part], np.float32)
    owner = [k for k, part in enumerate(parts) for _ in part]
    order = row_order(boxes)
    return boxes[order], [owner[i] for i in order]


def _parts_read(boxes, owner) -> list[int]:
    """The part of each line in reading order, runs collapsed: [0, 1, 2] = part by part."""
    seq = [owner[i] for i in analyse(boxes).order]
    return [p for k, p in enumerate(seq) if k == 0 or seq[k - 1] != p]


def test_two_text_columns_under_a_spanning_title_read_title_then_columns_then_footer():
    boxes, owner = _in_row_order([_box(40, 0, 640, 30)], _column(40, 60, 20), _column(380, 60, 20),
                                 [_box(40, 700, 640)])
    layout = analyse(boxes)
    assert _parts_read(boxes, owner) == [0, 1, 2, 3]
    assert layout.blocks[0].kind == "title" and len({block.area for block in layout.blocks}) == 4


def test_three_columns_and_a_heading_inside_one():
    middle = [_box(380, 60, 120)] + _column(380, 100, 18)
    boxes, owner = _in_row_order(_column(40, 60, 20), middle, _column(720, 60, 20))
    assert _parts_read(boxes, owner) == [0, 1, 2]
    assert next(block.kind for block in analyse(boxes).blocks if block.area == 1) == "title"


@pytest.mark.parametrize("degrees", [-10, -4, 4, 10])
def test_skewed_columns_are_still_found(degrees):
    parts = [[_box(40, 0, 640, 30)], _column(40, 60, 20), _column(380, 60, 20)]
    turned = [turn(np.asarray(part, np.float64), np.radians(degrees)).tolist() for part in parts]
    boxes, owner = _in_row_order(*turned)
    assert _parts_read(boxes, owner) == [0, 1, 2]
    assert analyse(boxes).skew == pytest.approx(degrees, abs=0.1)


def test_a_receipt_and_a_table_keep_the_row_order():
    receipt = [box for k in range(25) for box in (_box(40, 26 * k, 220), _box(420, 26 * k, 60))]
    table = [_box(40 + 120 * c, 26 * k, 50) for k in range(20) for c in range(5)]
    for boxes in (receipt, table):
        boxes = np.asarray(boxes, np.float32)[row_order(np.asarray(boxes, np.float32))]
        layout = analyse(boxes)
        assert layout.order == tuple(range(len(boxes)))
        assert [block.kind for block in layout.blocks] == ["table"]


def test_two_key_value_tables_side_by_side_keep_the_row_order():
    # Each row is long once its cells are taken together, but no side has running text.
    pairs = [box for k in range(20) for x in (40, 420) for box in (_box(x, 26 * k, 80), _box(x + 120, 26 * k, 120))]
    boxes = np.asarray(pairs, np.float32)[row_order(np.asarray(pairs, np.float32))]
    assert analyse(boxes).order == tuple(range(len(boxes)))


def test_a_single_column_with_split_lines_keeps_the_row_order():
    pieces = [box for k in range(30) for box in
              ([_box(40, 30 * k, 600)] if k % 3 else [_box(40, 30 * k, 200 + 10 * k), _box(260 + 10 * k, 30 * k, 300)])]
    boxes = np.asarray(pieces, np.float32)[row_order(np.asarray(pieces, np.float32))]
    assert analyse(boxes).order == tuple(range(len(boxes)))


def test_vertical_cjk_reads_columns_right_to_left_tier_by_tier():
    upper = [_box(500 - 30 * k, 0, 22, 300) for k in range(6)]
    lower = [_box(500 - 30 * k, 360, 22, 200) for k in range(4)]
    boxes, owner = _in_row_order(upper, lower)
    layout = analyse(boxes)
    xs = [boxes[i][0][0] for i in layout.order]
    assert [owner[i] for i in layout.order] == [0] * 6 + [1] * 4
    assert xs[:6] == sorted(xs[:6], reverse=True) and xs[6:] == sorted(xs[6:], reverse=True)
    assert [block.kind for block in layout.blocks] == ["vertical", "vertical"]


def test_blocks_cover_every_line_once_inside_their_boxes():
    boxes, _ = _in_row_order([_box(40, 0, 640, 30)], _column(40, 60, 20), _column(380, 60, 20))
    layout = analyse(boxes)
    assert sorted(layout.order) == list(range(len(boxes)))
    for block in layout.blocks:
        corners = np.asarray(block.box)
        inside = np.asarray([boxes[i] for i in block.lines]).reshape(-1, 2)
        assert (inside >= corners.min(axis=0) - 0.1).all() and (inside <= corners.max(axis=0) + 0.1).all()


def test_no_lines_and_one_line():
    assert analyse(np.zeros((0, 4, 2))).order == ()
    layout = analyse([_box(10, 10, 100)])
    assert layout.order == (0,) and layout.blocks[0].lines == (0,)


# ---- scoring ------------------------------------------------------------------------------

def _span(text, box, order, block_id, block="text_block"):
    return {"text": text, "box": box, "order": order, "block_id": block_id, "block": block}


def test_the_annotated_reference_joins_blocks_by_order_and_skips_headers():
    labels = [_span("c", _box(400, 0, 100), 2, 7), _span("a", _box(0, 0, 100), 1, 3),
              _span("b", _box(0, 30, 100), 1, 3), _span("page 3", _box(0, 500, 50), None, 9, "page_number"),
              _span("fig", _box(200, 200, 50), 3, 8, "figure")]
    assert [block.text for block in reference_blocks(labels)] == ["ab", "c"]


def test_pages_without_an_annotated_order_are_referenced_in_rows_image_or_upright():
    boxes = turn(np.asarray([_box(0, 0, 400), _box(420, 0, 400)], np.float64), np.radians(3))
    labels = [{"text": "right", "box": boxes[1].tolist()}, {"text": "left", "box": boxes[0].tolist()}]
    assert [block.text for block in reference_blocks(labels)] == ["left", "right"]
    tilted = [{"text": t, "box": b.tolist()} for t, b in zip(("one", "two"), turn(np.asarray(
        [_box(0, 0, 900, 12), _box(0, 14, 900, 12)], np.float64), np.radians(-3)))]
    assert [block.text for block in reference_blocks(tilted[::-1], skew=-3)] == ["one", "two"]


def test_lines_are_scored_in_the_order_given_and_the_oracle_follows_the_blocks():
    labels = [_span("first", _box(0, 0, 300), 1, 1), _span("second", _box(400, 0, 300), 2, 2)]
    texts, boxes = ["second", "first"], [_box(400, 0, 300), _box(0, 0, 300)]
    scores = page_order_scores(texts, boxes, labels, (100, 800), {"given": [0, 1], "fixed": [1, 0]})
    assert scores["fixed"].cer == scores["oracle"].cer == 0 < scores["given"].cer
    assert oracle_order(boxes, reference_blocks(labels)) == [1, 0]
