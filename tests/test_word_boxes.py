"""Word boxes from the recogniser's CTC alignment (worker.words): placed on real scans where the
words are printed (better than the character-count split they replace), carried through page
turns and upside-down lines, and used by hOCR, ALTO and the PDF text layer."""

from __future__ import annotations

import numpy as np
import pypdfium2
import pytest

from bench.word_boxes import iou, ocr_words, score_page, truth_words
from producer.formats import alto, hocr, pdf
from producer.formats.layout import PageOutput, word_box
from worker.offline.evaluation import upright_box
from worker.pipeline import PageTask
from worker.words import Span, line_words, mirrored, spans

PAGES = [("funsd_forms", "0000999294"), ("funsd_forms", "01073843"), ("sroie_receipts", "336")]
RECEIPT = ("sroie_receipts", "000")


def test_spans_follow_the_character_runs_and_never_overlap():
    # steps: "ab" at runs centred on 1.5 and 4.5, a space at 6.5, "c" at 9.5, the tail past 10
    ids = np.array([0, 1, 0, 0, 2, 0, 3, 0, 0, 1, 0, 0])
    best = np.full(len(ids), 0.9)
    best[4] = 0.5
    found = spans(ids, best, separators={3}, width=10.0)
    assert len(found) == 2
    (first, second) = found
    # pitch 3 steps (median of 3, 2, 3); a word from 0.75 pitch before its first centre to 0.5 after its last
    assert (first.start, first.end, second.start) == pytest.approx((0.0, 0.6, 0.725))  # 0.0: clamped to the crop
    assert second.end == pytest.approx(1.0)  # the tail pad is past the crop
    assert first.confidence == pytest.approx(0.7) and second.confidence == pytest.approx(0.9)
    assert spans(np.zeros(5, int), np.ones(5), {3}, 5.0) == ()
    assert mirrored([Span(0.1, 0.3, 1.0)]) == (Span(0.7, 0.9, 1.0),)


def test_line_words_lie_on_the_quad_along_its_width_or_its_height():
    quad = np.array([[10, 20], [110, 20], [110, 40], [10, 40]], np.float64)
    words = line_words("ab cd", [Span(0.0, 0.4, 0.9), Span(0.5, 1.0, 0.8)], quad, along_height=False)
    assert [w.box for w in words] == [((10, 20), (50, 20), (50, 40), (10, 40)), ((60, 20), (110, 20), (110, 40), (60, 40))]
    tall = np.array([[10, 0], [30, 0], [30, 200], [10, 200]], np.float64)
    (word,) = line_words("x", [Span(0.25, 0.5, 0.9)], tall, along_height=True)
    assert word.box == ((10, 50), (30, 50), (30, 100), (10, 100))
    assert line_words("ab cd", [Span(0.0, 1.0, 0.9)], quad, False) == ()  # no pairing: no words


def test_words_lie_on_the_printed_words_better_than_a_character_count_split(read_page):
    """Scored on the pages' one-word items (bench.word_boxes); on lines of 2+ words is where a
    character-count split has to guess."""
    rows = []
    for page in PAGES:
        result, image, labels = read_page(*page)
        rows += score_page(truth_words(labels), ocr_words(result, image.shape[1], image.shape[0]))
        for line in result.lines:  # every word inside its line's box, in reading order
            assert [word.text for word in line.words] == line.text.split()
            xs, ys = [p[0] for p in line.box], [p[1] for p in line.box]
            for word in line.words:
                assert all(min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys) for x, y in word.box)
    multi = [row for row in rows if row["multi"]]
    assert len(rows) >= 150 and len(multi) >= 15, (len(rows), len(multi))
    assert np.mean([row["aligned"] >= 0.5 for row in rows]) >= 0.85
    aligned, estimated = (np.mean([row[way] for row in multi]) for way in ("aligned", "estimated"))
    assert aligned > estimated + 0.03, (aligned, estimated)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_words_of_a_turned_page_lie_where_the_upright_read_put_them(read_page, degrees):
    upright, image, _ = read_page(*RECEIPT)
    turned, _, _ = read_page(*RECEIPT, degrees)
    height, width = image.shape[:2]
    placed = {}
    for line in upright.lines:
        for word in line.words:
            placed.setdefault(word.text, []).append(word_box(word.box, width, height))
    scores = []
    for line in turned.lines:
        for word in line.words:
            back = word_box([tuple(p) for p in upright_box(word.box, degrees, image.shape)], width, height)
            if word.text in placed:
                scores.append(max(iou(back, box) for box in placed[word.text]))
    assert len(scores) >= 30 and np.median(scores) >= 0.8, np.median(scores)


def test_an_upside_down_line_s_words_lie_where_they_are_printed(read_page, pipelines, base_settings):
    """A strip of a receipt turned 180 degrees in place: its words, read turned, are the upright
    read's words mirrored across the page."""
    upright, image, _ = read_page(*RECEIPT)
    chosen = max(upright.lines[len(upright.lines) // 3:], key=lambda line: len(line.words))
    y0, y1 = int(min(y for _, y in chosen.box)) - 2, int(max(y for _, y in chosen.box)) + 2
    page = image.copy()
    page[y0:y1] = page[y0:y1][::-1, ::-1]
    (result,) = pipelines[base_settings.default_model].run([PageTask(page, "page")])
    height, width = image.shape[:2]
    expected = {w.text: word_box(tuple((width - 1 - x, y0 + y1 - 1 - y) for x, y in w.box), width, height)
                for w in chosen.words}
    found = [(w.text, word_box(w.box, width, height)) for line in result.lines for w in line.words
             if y0 <= np.mean(w.box, axis=0)[1] <= y1 and w.text in expected]
    assert len(found) >= max(2, len(expected) // 2), (chosen.text, found)
    assert np.median([iou(box, expected[text]) for text, box in found]) >= 0.6


def _page_with_words() -> PageOutput:
    """One line whose two words are unevenly long and spaced: where a split by character count
    would put them is far from where they are."""
    words = [{"text": "a", "confidence": 0.5, "box": [[100, 50], [120, 50], [120, 90], [100, 90]]},
             {"text": "wonderful", "confidence": 0.95, "box": [[600, 50], [900, 50], [900, 90], [600, 90]]}]
    line = {"text": "a wonderful", "confidence": 0.9, "box": [[90, 50], [910, 50], [910, 90], [90, 90]], "words": words}
    return PageOutput(1, "job", {"width": 1000, "height": 200, "lines": [line]}, 100.0)


def test_hocr_and_alto_take_each_word_s_box_and_confidence():
    page = _page_with_words()
    markup = hocr.render("a.png", [page]).decode()
    assert "bbox 100 50 120 90; x_wconf 50" in markup and "bbox 600 50 900 90; x_wconf 95" in markup
    xml = alto.render("a.png", [page]).decode()
    assert 'CONTENT="a" HPOS="100" VPOS="50" WIDTH="20" HEIGHT="40" WC="0.500"' in xml
    assert 'CONTENT="wonderful" HPOS="600"' in xml and 'WC="0.950"' in xml


def test_the_pdf_layer_puts_each_word_over_its_box():
    import io

    from PIL import Image

    scan = io.BytesIO()
    Image.new("L", (1000, 200), 255).save(scan, format="PNG")
    data = pdf.render("a.png", [_page_with_words()], [scan.getvalue()])  # 100 dpi: 0.72 pt a pixel
    text_page = pypdfium2.PdfDocument(data)[0].get_textpage()
    chars = [(text_page.get_text_range(i, 1), text_page.get_charbox(i)) for i in range(text_page.count_chars())]
    assert "".join(ch for ch, _ in chars).split() == ["a", "wonderful"]
    first_w = next(box for ch, box in chars if ch == "w")
    last_l = [box for ch, box in chars if ch == "l"][-1]
    a = next(box for ch, box in chars if ch == "a")
    assert a[0] == pytest.approx(100 * 0.72, abs=2) and a[2] == pytest.approx(120 * 0.72, abs=2)
    assert first_w[0] == pytest.approx(600 * 0.72, abs=2) and last_l[2] == pytest.approx(900 * 0.72, abs=2)
