"""The same image gives the same result in any batch: every labelled line (UW3 and Chinese) and
every receipt and OmniDocBench page read alone, then in batches of 8 with shuffled batch-mates,
give identical text and boxes and confidences within 1e-3 (worker.recognize pads no line for a
batch-mate)."""

from __future__ import annotations

import random

import pytest

from tests.helpers import eval_dir
from worker.offline.evaluation import line_items, page_items, read_image
from worker.pipeline import PageTask


def _read_alone_and_shuffled(pipeline, tasks: list[PageTask], seed: int):
    alone = [pipeline.run([task])[0] for task in tasks]
    order = list(range(len(tasks)))
    random.Random(seed).shuffle(order)
    together = [None] * len(tasks)
    for begin in range(0, len(order), 8):
        group = order[begin:begin + 8]
        for i, result in zip(group, pipeline.run([tasks[i] for i in group])):
            together[i] = result
    return alone, together


def _assert_same(alone, together, names):
    differ = []
    for name, a, b in zip(names, alone, together):
        assert not isinstance(a, BaseException) and not isinstance(b, BaseException), (name, a, b)
        same = [(x.text, x.box) for x in a.lines] == [(y.text, y.box) for y in b.lines] and \
            all(abs(x.confidence - y.confidence) <= 1e-3 for x, y in zip(a.lines, b.lines))
        if not same or a.text != b.text:
            differ.append(name)
    assert not differ, f"{len(differ)} of {len(names)} read differently in a batch: {differ[:10]}"


@pytest.mark.parametrize("name, mode", [("uw3_lines", "line"), ("omnidocbench_zh_lines", "line"),
                                        ("sroie_receipts", "page"), ("omnidocbench_pages", "page")])
def test_every_item_reads_the_same_alone_and_among_any_batch_mates(pipelines, base_settings, name, mode):
    pipeline = pipelines[base_settings.default_model]
    items = line_items(eval_dir(name)) if mode == "line" else page_items(eval_dir(name))
    tasks = [PageTask(read_image(path, base_settings), mode) for path, _ in items]
    alone, together = _read_alone_and_shuffled(pipeline, tasks, seed=14 if mode == "line" else 3)
    _assert_same(alone, together, [path.name for path, _ in items])
