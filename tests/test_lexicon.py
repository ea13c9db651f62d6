"""The English lexicon pass: CTC scoring of alternatives and when it may replace a reading."""

from __future__ import annotations

import itertools
import math
import string

import numpy as np
import pytest

from worker.language import reads_as_english
from worker.lexicon import Lexicon, correct, ctc_log_likelihood, english, tokens

CHARS = ["<blank>", " ", *string.ascii_letters, *string.digits, ".", ",", ")"]
COLUMN = {ch: c for c, ch in enumerate(CHARS) if c}


def steps_for(text: str, ties: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """T x C probabilities: each character of ``text`` sure on its own step, then a blank step.
    ``ties[i]`` spreads character i's step over other characters (probabilities)."""
    rows = []
    for i, ch in enumerate(text):
        row = np.full(len(CHARS), 1e-6)
        spread = (ties or {}).get(i, {ch: 1.0})
        for alt, p in spread.items():
            row[COLUMN[alt] if alt else 0] = p
        rows.append(row / row.sum())
        blank = np.full(len(CHARS), 1e-6)
        blank[0] = 1.0
        rows.append(blank / blank.sum())
    return np.array(rows)


def rn_read_as_m(text: str) -> np.ndarray:
    """Steps for ``text`` whose "m" was nearly "rn": its step leans "m" over "r", and the step
    after it is an even "m"/"n" split."""
    index = text.index("m")
    probs = steps_for(text, {index: {"m": 0.55, "r": 0.45}})
    return np.insert(probs, 2 * index + 1, steps_for("n")[0] * 0.5 + steps_for("m")[0] * 0.5, axis=0)


def run(probs: np.ndarray, lexicon: Lexicon) -> str | None:
    """The corrected line, or None when the greedy reading stands."""
    path = probs.argmax(axis=1)
    greedy = "".join(CHARS[c] for i, c in enumerate(path) if c and (i == 0 or path[i - 1] != c))
    text = correct(greedy, probs, path, CHARS, lexicon)
    return None if text == greedy else text


def test_ctc_log_likelihood_sums_every_alignment():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=5)

    def collapse(path):
        kept = [c for i, c in enumerate(path) if c and (i == 0 or path[i - 1] != c)]
        return kept

    for labels in ([1], [1, 2], [1, 1], [2, 1, 2]):
        total = sum(math.prod(probs[t, c] for t, c in enumerate(path))
                    for path in itertools.product(range(3), repeat=5) if collapse(path) == labels)
        assert ctc_log_likelihood(np.log(probs), labels) == pytest.approx(math.log(total))


def test_tokens_carry_the_steps_between_spaces():
    probs = steps_for("ab cd")
    found = tokens(probs.argmax(axis=1), COLUMN[" "], CHARS)
    assert [(t.text, t.start, t.end, t.offset) for t in found] == [("ab", 0, 4, 0), ("cd", 5, 10, 3)]


def test_a_near_tie_resolves_to_the_english_word():
    lexicon = Lexicon({"unit": 10, "quaternions": 5})
    assert run(rn_read_as_m("unit quatemions)."), lexicon) == "unit quaternions)."


def test_a_confident_reading_is_never_overruled():
    lexicon = Lexicon({"piano": 10, "the": 100})
    assert run(steps_for("the Piraux"), lexicon) is None
    # unsure, but the word the dictionary knows is far less likely to the recogniser
    assert run(steps_for("the Piraux", {7: {"a": 0.8, "n": 0.02, "u": 0.18}}), lexicon) is None


def test_a_full_stop_before_a_lowercase_word_may_be_a_comma():
    lexicon = Lexicon({"diagnosis": 10, "drug": 10, "e": 1})
    unsure = steps_for("diagnosis. drug", {9: {".": 0.6, ",": 0.4}})
    assert run(unsure, lexicon) == "diagnosis, drug"
    assert run(steps_for("diagnosis. drug", {9: {".": 0.97, ",": 0.03}}), lexicon) is None
    assert run(steps_for("diagnosis. Drug", {9: {".": 0.6, ",": 0.4}}), lexicon) is None


def test_names_codes_and_mixed_case_words_stay_as_read():
    lexicon = Lexicon({"smith": 10, "bad": 10, "ph": 5, "paid": 5, "mr": 5, "sdn": 1})
    # fairly sure readings with a dictionary word one letter away, at odds above 1/10
    assert run(steps_for("Mr Smyth paid", {4: {"y": 0.85, "i": 0.15}}), lexicon) is None
    assert run(steps_for("SDN BHD", {5: {"H": 0.85, "A": 0.15}}), lexicon) is None
    assert run(steps_for("pH paid", {0: {"p": 0.85, "P": 0.15}}), lexicon) is None


def test_abbreviations_keep_their_full_stop():
    lexicon = Lexicon({"et": 10, "al": 10, "reported": 10})
    assert run(steps_for("et al. reported", {5: {".": 0.6, ",": 0.4}}), lexicon) is None


def test_the_line_keeps_its_spacing():
    lexicon = Lexicon({"total": 10, "quaternions": 5})
    assert run(rn_read_as_m(" Total  12.00 quatemions"), lexicon) == " Total  12.00 quaternions"


def test_irregular_case_of_a_known_word_is_repaired():
    lexicon = Lexicon({"kuhn": 1})
    probs = steps_for("KuHN", {1: {"u": 0.55, "U": 0.45}})
    assert run(probs, lexicon) == "KUHN"


def test_english_list_is_the_packaged_one():
    words = english()
    assert "quaternions" in words and "Hungarian" in words and "quatemions" not in words
    assert "quaternions" in words.near("quatemions")


def test_real_lines_read_with_their_commas(pipelines):
    """Two UW3 lines whose comma the recogniser nearly read as a full stop."""
    from shared.settings import Settings
    from tests.helpers import eval_dir
    from worker.offline.evaluation import line_items, read_image
    from worker.pipeline import OcrPipeline, PageTask

    wanted = {"0316_010063.png", "1272_010077.png"}
    items = [(path, label) for path, label in line_items(eval_dir("uw3_lines")) if path.name in wanted]
    pipeline = OcrPipeline(pipelines["ppocrv6-small"].model, Settings(intra_op_threads=2))
    texts = [r.text for r in pipeline.run([PageTask(read_image(path, pipeline.settings), "line", "en") for path, _ in items])]
    assert texts == [label for _, label in items]


@pytest.mark.parametrize(("line", "expected"), [
    ("When we use graph contraction to construct a pyramid, two", True),
    ("signed to generate a straight line if the driving noise", True),
    ("TOTAL 京 12.00", False),  # any CJK character: read as it is
    ("Die Anlage wird in der Stadt gebaut und bald eröffnet", False),
    ("Le système de gestion des documents est prêt", False),
    ("Jalan Taman Sri Kuala Lumpur", False),
    ("Müller café déjà vu", False),
    ("12.50", False),  # no words: nothing to decide on
])
def test_auto_reads_a_line_as_english_only_when_it_has_no_cjk_and_mostly_english_words(line, expected):
    assert reads_as_english(line, english()) is expected
