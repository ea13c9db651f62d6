"""Accuracy regression gate: the pipeline on fixed subsets of each dev set stays under a CER
threshold set from the measured value plus a little slack (docs/BENCHMARKS.md), so a change
that costs accuracy fails CI. Speed is measured in bench/, never here."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from tests.helpers import eval_dir
from worker.evaluation import evaluate_lines, evaluate_pages, line_items, page_items
from worker.pipeline import OcrPipeline

# (set, every n-th item, charset hint, measured CER on 2026-11-23 (width scale 0.85, detection long side 1600), threshold);
# 'auto' is what a job that gives no hint gets.
LINE_GATES = [
    ("uw3_lines", 5, "en", 0.0000, 0.010),
    ("uw3_lines", 5, "auto", 0.0000, 0.010),
    ("omnidocbench_zh_lines", 5, "auto", 0.0272, 0.040),
]
PAGE_GATES = [
    ("sroie_receipts", 6, "en", 0.0430, 0.055),
]
OMNIDOC_PAGES = (5, 8)  # a textbook page and a slide: the labels of the others cover less text
OMNIDOC_MEASURED, OMNIDOC_MAX = 0.1243, 0.150  # lang=auto


@pytest.fixture(scope="module")
def pipeline(pipelines):
    """The session's model with default pipeline settings (the gate measures the defaults)."""
    model = pipelines["ppocrv6-small"].model
    return OcrPipeline(model, Settings(intra_op_threads=2))


@pytest.mark.parametrize(("name", "step", "lang", "measured", "limit"), LINE_GATES)
def test_line_cer_stays_under_its_gate(pipeline, name, step, lang, measured, limit):
    figures = evaluate_lines(pipeline, line_items(eval_dir(name))[::step], 8, False, lang)
    assert figures["cer"] <= limit, f"{name}: CER {figures['cer']:.4f} (measured {measured}, gate {limit})"


@pytest.mark.parametrize(("name", "step", "lang", "measured", "limit"), PAGE_GATES)
def test_page_cer_stays_under_its_gate(pipeline, name, step, lang, measured, limit):
    figures = evaluate_pages(pipeline, page_items(eval_dir(name))[::step], 8, True, lang)
    assert figures["cer"] <= limit, f"{name}: CER {figures['cer']:.4f} (measured {measured}, gate {limit})"


def test_mixed_language_pages_stay_under_their_gate(pipeline):
    items = page_items(eval_dir("omnidocbench_pages"))
    figures = evaluate_pages(pipeline, [items[i] for i in OMNIDOC_PAGES], 8, False, "auto")
    assert figures["cer"] <= OMNIDOC_MAX, f"CER {figures['cer']:.4f} (measured {OMNIDOC_MEASURED})"
