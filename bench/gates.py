"""Accuracy gates: what ``tests/test_accuracy_regression.py`` holds the default pipeline to.

    .venv/bin/python -m bench.gates            # re-measure every gate and feature, print proposals
    .venv/bin/python -m bench.gates --write    # ... and write them into bench/gates.json

A gate is a fixed subset of the labelled sets in ``../shared/eval`` (items named
``<set>/<item>``, ``<set>/*`` for a whole set) and the edit operations the default pipeline
makes there: the default model and ``Settings``, jobs that give no ``lang``, 8 images per
batch. It counts edits, not only CER, so its margin is explicit. It fails when the edits rise
above ``measured + slack``, and also when they fall below ``measured - slack``: accuracy
improved, and re-running this command with ``--write`` tightens the gate.

A feature is a documented accuracy setting (docs/BENCHMARKS.md) with the ``Settings``
changes that switch it off or set it back, and the gate that must catch that. ``measured_off``
records the edits that gate counts without it; they must exceed the gate's threshold by at
least ``MIN_MARGIN`` edits, so that one edit of noise decides nothing. A new guarantee is one
more gate in ``gates.json`` and one more feature naming it; a gate scored another way adds its
scorer to ``SCORES``. ``--write`` refuses a table in which some feature fails that margin.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

from bench.accuracy import EVAL
from shared.settings import Settings
from worker.offline.evaluation import (
    evaluate_lines,
    evaluate_pages,
    line_items,
    page_items,
)
from worker.pipeline import OcrPipeline

TABLE = Path(__file__).with_name("gates.json")
MIN_MARGIN = 2
BATCH = 8  # images per pipeline call: a worker's default OCR_MAX_BATCH
THREADS = 2
UPPER_CASE_LABELS = {"sroie_receipts"}  # compared case-insensitively (../shared/eval/README.md)


def _line_edits(pipeline: OcrPipeline, data: Path, picked: list[str]) -> tuple[int, int]:
    found = {str(path.relative_to(data)): (path, text) for path, text in line_items(data)}
    figures = evaluate_lines(pipeline, _pick(found, picked, data), BATCH, data.name in UPPER_CASE_LABELS)
    return figures["edits"], figures["chars"]


def _region_edits(pipeline: OcrPipeline, data: Path, picked: list[str]) -> tuple[int, int]:
    found = {path.stem: (path, labels) for path, labels in page_items(data)}
    figures = evaluate_pages(pipeline, _pick(found, picked, data), BATCH, data.name in UPPER_CASE_LABELS)
    return figures["edits_gt_region"], figures["chars"]


# How a gate counts, by name: (pipeline, set folder, item names) -> (edits, reference chars).
# Pages count gt-region edits: the sets leave tables, stamps and footers unlabelled, so text
# read there is no error, while a labelled line lost or misread is (../shared/eval/README.md).
SCORES: dict[str, Callable[[OcrPipeline, Path, list[str]], tuple[int, int]]] = {
    "line_edits": _line_edits,
    "gt_region_edits": _region_edits,
}


def _pick(found: dict, picked: list[str], data: Path) -> list:
    if picked == ["*"]:
        return list(found.values())
    missing = [name for name in picked if name not in found]
    if missing:
        raise ValueError(f"not in {data}: {', '.join(missing)}")
    return [found[name] for name in picked]


@dataclass(frozen=True)
class Gate:
    """A subset of the labelled sets and the edits the default pipeline makes on it."""

    name: str
    score: str
    items: tuple[str, ...]
    measured: int
    slack: int
    chars: int = 0
    why: str = ""

    @property
    def threshold(self) -> int:
        return self.measured + self.slack

    def by_set(self) -> dict[str, list[str]]:
        """Item names grouped by set, in the gate's order."""
        groups: dict[str, list[str]] = {}
        for item in self.items:
            data, name = item.split("/", 1)
            groups.setdefault(data, []).append(name)
        return groups


@dataclass(frozen=True)
class Feature:
    """A documented accuracy feature: the ``Settings`` changes that switch it off, the gate
    that must catch that, and the edits that gate measured without it."""

    name: str
    gate: str
    off: dict = field(hash=False)
    measured_off: int
    what: str = ""


@dataclass(frozen=True)
class Table:
    date: str
    machine: str
    gates: dict[str, Gate]
    features: dict[str, Feature]


def load(path: Path = TABLE) -> Table:
    """The table in ``path``; ValueError when a feature names a gate that is not there."""
    raw = json.loads(path.read_text("utf-8"))
    gates = {name: Gate(name=name, **{**entry, "items": tuple(entry["items"])}) for name, entry in raw["gates"].items()}
    features = {name: Feature(name=name, **entry) for name, entry in raw["features"].items()}
    unknown = sorted(f"{f.name} -> {f.gate}" for f in features.values() if f.gate not in gates)
    if unknown:
        raise ValueError(f"{path}: features name unknown gates: {', '.join(unknown)}")
    return Table(raw["date"], raw["machine"], gates, features)


def save(table: Table, path: Path = TABLE) -> None:
    """Write ``table`` in the layout ``load`` reads."""
    def entries(named: dict) -> dict:
        return {name: {k: v for k, v in asdict(item).items() if k != "name"} for name, item in named.items()}

    document = {"date": table.date, "machine": table.machine,
                "gates": entries(table.gates), "features": entries(table.features)}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")


class Models:
    """Model versions, each loaded once (``seed``: pipelines already loaded, by version)."""

    def __init__(self, seed: dict[str, OcrPipeline] | None = None) -> None:
        self._loaded = {version: pipeline.model for version, pipeline in (seed or {}).items()}

    def pipeline(self, changes: dict | None = None) -> OcrPipeline:
        """The pipeline of a worker with default ``Settings`` plus ``changes``, on its default model."""
        settings = Settings(intra_op_threads=THREADS, backend="onnxruntime").replace(**(changes or {}))
        if settings.default_model not in self._loaded:
            self._loaded[settings.default_model] = OcrPipeline.load(settings.default_model, settings).model
        return OcrPipeline(self._loaded[settings.default_model], settings)


def measure(gate: Gate, pipeline: OcrPipeline) -> tuple[int, int]:
    """(edits, reference characters) of ``pipeline`` on the gate's items."""
    edits = chars = 0
    for data, picked in gate.by_set().items():
        set_edits, set_chars = SCORES[gate.score](pipeline, EVAL / data, picked)
        edits, chars = edits + set_edits, chars + set_chars
    return edits, chars


def remeasure(table: Table, models: Models, report: Callable[[str], None] = print) -> Table:
    """The table with every gate measured now at the defaults, and every feature switched off."""
    gates = {}
    for gate in table.gates.values():
        edits, chars = measure(gate, models.pipeline())
        gates[gate.name] = replace(gate, measured=edits, chars=chars)
        report(f"gate {gate.name}: {edits} edits in {chars} chars (table: {gate.measured}); "
               f"proposed threshold {edits} + {gate.slack} = {edits + gate.slack}")
    features = {}
    for feature in table.features.values():
        gate = gates[feature.gate]
        edits, _ = measure(gate, models.pipeline(feature.off))
        features[feature.name] = replace(feature, measured_off=edits)
        report(f"feature {feature.name} off {feature.off}: gate {gate.name} {edits} edits, "
               f"threshold {gate.threshold}, margin {edits - gate.threshold}")
    return replace(table, date=date.today().isoformat(), gates=gates, features=features)


def too_close(table: Table) -> list[str]:
    """Features whose gate does not fail by at least ``MIN_MARGIN`` edits without them."""
    return [f"{f.name}: {f.measured_off} edits on {f.gate}, threshold {table.gates[f.gate].threshold}"
            for f in table.features.values() if f.measured_off - table.gates[f.gate].threshold < MIN_MARGIN]


def markdown(table: Table) -> str:
    """The gate table as docs/BENCHMARKS.md shows it."""
    rows = ["| gate | items | chars | measured | slack | threshold | feature off: edits (margin) |",
            "|---|---|---|---|---|---|---|"]
    for gate in table.gates.values():
        offs = ", ".join(f"{f.name} {f.measured_off} (+{f.measured_off - gate.threshold})"
                         for f in table.features.values() if f.gate == gate.name)
        items = ", ".join(f"{data} {'all' if picked == ['*'] else len(picked)}"
                          for data, picked in gate.by_set().items())
        rows.append(f"| {gate.name} | {items} | {gate.chars} | {gate.measured} "
                    f"| {gate.slack} | {gate.threshold} | {offs or '–'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gates", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write the new values into {TABLE.name}")
    parser.add_argument("--machine", help="where this ran, recorded with --write (default: as in the table)")
    args = parser.parse_args(argv)
    table = load()
    fresh = remeasure(table, Models(), report=lambda line: print(line, flush=True))
    fresh = replace(fresh, machine=args.machine or table.machine)
    print(markdown(fresh))
    close = too_close(fresh)
    for line in close:
        print(f"a feature too close to its gate's threshold: {line}", file=sys.stderr)
    if args.write and not close:
        save(fresh)
        print(f"written: {TABLE}")
    return 1 if close else 0


if __name__ == "__main__":
    sys.exit(main())
