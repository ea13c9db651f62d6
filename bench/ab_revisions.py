"""Line throughput of two git revisions, side by side: rounds alternate between them.

    .venv/bin/python -m bench.ab_revisions BEFORE AFTER [--rounds 3] [--jobs 400]

Each revision is checked out in a temporary worktree beside this one (so ``../shared/eval`` is
found), and each round runs ``bench.line_throughput --rounds 1`` in one, then the other, with
this venv's Python (the worktree's own code comes first on the path). Prints the median lines/s
of each revision at batch cap 1 and 8, and AFTER's ratio to BEFORE: for a change meant to leave
speed alone, the ratios should sit within the noise between rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_round(tree: Path, jobs: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-m", "bench.line_throughput", "--rounds", "1", "--jobs", str(jobs),
                        "--json", out.name], cwd=tree, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())["lines_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=400)
    args = parser.parse_args()
    trees = {name: ROOT.parent / f".ab-{name}-{rev[:10]}" for name, rev in (("before", args.before),
                                                                          ("after", args.after))}
    revisions = {"before": args.before, "after": args.after}
    for name, tree in trees.items():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(tree), revisions[name]],
                       check=True, stdout=subprocess.DEVNULL)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    try:
        for round_no in range(args.rounds):
            for name in (("before", "after") if round_no % 2 == 0 else ("after", "before")):
                figures[name].append(one_round(trees[name], args.jobs))
                print(f"round {round_no + 1} {name}: {figures[name][-1]}", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    for key in ("system_1", "system_8"):
        med = {name: statistics.median(f[key] for f in figures[name]) for name in trees}
        print(f"{key}: before {med['before']:.1f} lines/s, after {med['after']:.1f} lines/s, "
              f"after/before {med['after'] / med['before']:.3f}")


if __name__ == "__main__":
    main()
