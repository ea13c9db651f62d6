"""Accuracy gates: the default pipeline on fixed subsets of the labelled sets makes the edit
count measured in ``bench/gates.json``, within its stated slack, and each documented accuracy
feature switched off or set back makes its gate fail by a clear margin, so losing one of them
fails CI. ``python -m bench.gates --write`` re-measures the table (docs/BENCHMARKS.md). Speed is
measured in bench/, never here."""

from __future__ import annotations

import pytest

from bench.gates import Models, load, measure, too_close

TABLE = load()
# The accuracy features docs/BENCHMARKS.md documents; each must have a gate that catches it.
DOCUMENTED = {"rec_width_scale", "lexicon", "lang_auto", "det_max_side", "det_min_side",
              "min_line_confidence", "default_model"}


@pytest.fixture(scope="module")
def models(pipelines):
    """The session's loaded default model; other versions load once, on first use."""
    return Models(pipelines)


@pytest.mark.parametrize("gate", TABLE.gates.values(), ids=lambda gate: gate.name)
def test_the_defaults_make_the_measured_edits(models, gate):
    edits, chars = measure(gate, models.pipeline())
    figures = f"{gate.name}: {edits} edits in {chars} chars (measured {gate.measured} ± {gate.slack})"
    assert edits <= gate.threshold, f"accuracy regression on {figures}"
    assert edits >= gate.measured - gate.slack, \
        f"accuracy improved on {figures}: tighten the gate with python -m bench.gates --write"


@pytest.mark.parametrize("feature", TABLE.features.values(), ids=lambda feature: feature.name)
def test_the_gate_fails_without_the_feature(models, feature):
    gate = TABLE.gates[feature.gate]
    edits, _ = measure(gate, models.pipeline(feature.off))
    assert edits > gate.threshold, \
        f"{feature.name} off ({feature.off}): {gate.name} {edits} edits, within its threshold {gate.threshold}"


def test_every_documented_feature_has_a_gate_that_fails_by_a_clear_margin_without_it():
    assert set(TABLE.features) == DOCUMENTED
    assert too_close(TABLE) == []
    assert all(gate.slack > 0 and len(set(gate.items)) == len(gate.items) for gate in TABLE.gates.values())
