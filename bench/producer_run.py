"""Pages/s of a whole producer run (``batchocr-submit``) over the eval page sets.

    .venv/bin/python -m bench.producer_run [--rounds 2] [--formats json,txt,hocr,alto,pdf]

Each round starts the local topology (fresh embedded Redis, the API, workers) once per set and
configuration, so no job is reused between runs, then times the producer end to end: reading the
scans, submitting over HTTP, OCR in the workers, writing every output format. Configurations:
2 workers x 1 ONNX thread (OCR_WORKERS_PER_HOST=2) and 1 worker x 2 threads, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.launcher import Topology
from worker.offline.evaluation import page_images

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = ("sroie_receipts", "omnidocbench_pages")
CONFIGS = {"2 workers x 1 thread": (2, "2"), "1 worker x 2 threads": (1, "1")}


def one_run(pages: list[Path], workers: int, per_host: str, formats: str) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    env["OCR_WORKERS_PER_HOST"] = per_host
    with tempfile.TemporaryDirectory() as tmp, Topology(workers=workers, env=env, log_level="WARNING") as topology:
        tree, out = Path(tmp) / "tree", Path(tmp) / "out"
        tree.mkdir()
        for page in pages:
            shutil.copy(page, tree / page.name)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "producer.cli", str(tree), "--out", str(out), "--api",
                        topology.api_url, "--formats", formats, "--no-progress"], check=True, env=env,
                       stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        summary = json.loads((out / "_batchocr" / "summary.json").read_text())
    assert summary["pages_done"] == len(pages) and summary["pages_failed"] == 0, summary
    return seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--formats", default="json,txt,hocr,alto,pdf")
    args = parser.parse_args()
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for name in SETS:
            pages = page_images(EVAL / name / "pages")
            order = list(CONFIGS.items())
            for label, (workers, per_host) in order if round_ % 2 == 0 else order[::-1]:
                seconds, _ = one_run(pages, workers, per_host, args.formats)
                times.setdefault((name, label), []).append(seconds)
                print(f"round {round_ + 1} {name} {label}: {len(pages)} pages in {seconds:.1f} s", flush=True)
    print(f"\n{platform.node()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, formats {args.formats}")
    print("| set | configuration | pages | median s | pages/s |\n|---|---|---|---|---|")
    for (name, label), values in times.items():
        count = len(page_images(EVAL / name / "pages"))
        median = statistics.median(values)
        print(f"| {name} | {label} | {count} | {median:.1f} | {count / median:.3f} |")


if __name__ == "__main__":
    main()
