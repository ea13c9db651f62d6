"""Scoring follows ../shared/eval/README.md: NFKC, no whitespace, reading order, gt-region."""

from __future__ import annotations

import numpy as np
import pytest

from worker.offline.scoring import (
    cer,
    in_reading_order,
    normalize,
    on_labelled_text,
    quads,
)


def test_normalize_nfkc_whitespace_and_case():
    assert normalize("Ｔｏｔａｌ： 12 ") == "Total:12"
    assert normalize("Total 12", ignore_case=True) == "TOTAL12"


def test_cer_is_total_errors_over_total_reference_chars():
    assert cer(["abc", "xy"], ["abd", "xyz"]) == pytest.approx(2 / 6)
    assert cer(["TOTAL"], ["total"], ignore_case=True) == 0.0
    with pytest.raises(ValueError):
        cer(["a"], ["a", "b"])


def box(x, y, w=40, h=10):
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def test_page_text_is_read_in_rows_then_columns():
    assert in_reading_order(["C", "B", "A"], [box(0, 50), box(60, 1), box(0, 0)]) == "ABC"
    assert in_reading_order([], []) == ""


def test_gt_region_keeps_only_predictions_on_labelled_text():
    gt = quads([box(0, 0, 100, 20)])
    preds = quads([box(10, 2, 50, 10), box(0, 200, 50, 10), box(-10, -5, 130, 40)])
    keep = on_labelled_text(preds, gt, (300, 300))
    # inside; far away; contains the whole labelled box although mostly outside it
    assert keep.tolist() == [True, False, True]
    assert on_labelled_text(np.zeros((0, 4, 2), np.float32), gt, (300, 300)).tolist() == []
