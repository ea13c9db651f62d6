"""Accuracy and speed of batchocr vs RapidOCR 3.10 and Tesseract 5 on ../shared/eval.

    bash bench/setup_peers.sh            # once: installs the peers
    .venv/bin/python -m bench.accuracy [--systems ours,rapidocr,tesseract] [--sets ...]

batchocr runs as a job that gives no hint (``lang=auto``, the default), with ``lang=all``
(every line read as it is: what auto changes), and on the English-only sets with ``lang=en`` (a
user's charset hint; the peers have no such option). Each (set, system) runs in its own
process, one after another on the same cores, so peak RSS is per system. Prints a Markdown table (CER, gt-region CER for pages, items/s) and writes
``artifacts/accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = {  # name: (Tesseract languages, case-insensitive scoring, English-only)
    "uw3_lines": ("eng", False, True),
    "omnidocbench_zh_lines": ("chi_sim+eng", False, False),
    "sroie_receipts": ("eng", True, True),
    "omnidocbench_pages": ("chi_sim+eng", False, False),
}


def run(system: str, name: str, threads: int) -> dict:
    lang, ignore_case, _ = SETS[name]
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        if system.startswith("ours"):
            command = [sys.executable, "-m", "worker.offline.evaluation", "--data", str(EVAL / name), "--json", out.name]
            if system.startswith("ours+lang="):
                command += ["--lang", system.removeprefix("ours+lang=")]
        else:
            command = [sys.executable, "-m", "bench.peer_eval", "--system", system, "--data", str(EVAL / name),
                       "--lang", lang, "--threads", str(threads), "--json", out.name]
        if ignore_case:
            command.append("--ignore-case")
        env = {"OCR_INTRA_OP_THREADS": str(threads), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return {"system": system, **json.loads(Path(out.name).read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="ours,rapidocr,tesseract")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("artifacts/accuracy.json"))
    args = parser.parse_args()
    rows = []
    for name in args.sets.split(","):
        systems = args.systems.split(",")
        if "ours" in systems:  # the job options a user would set
            hints = ["ours+lang=all", *(["ours+lang=en"] if SETS[name][2] else [])]
            systems[systems.index("ours") + 1 : systems.index("ours") + 1] = hints
        for system in systems:
            rows.append(run(system, name, args.threads))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print("| set | system | CER | gt-region CER | items/s | ms/item | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        region = f"{r['cer_gt_region']:.4f}" if "cer_gt_region" in r else "–"
        print(f"| {r['set']} | {r['system']} | {r['cer']:.4f} | {region} | {r['items_per_s']:.2f} "
              f"| {r['ms_per_item']:.0f} | {r['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
