"""``batchocr-demo``: bring up Redis, the API and two workers, OCR the shipped samples, print text."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from shared.client import ApiClient
from shared.document import ResultDocument
from shared.entry import console_script
from ops.launcher import Topology

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@console_script("batchocr-demo")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchocr-demo", description=__doc__)
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="folder with lines/ and pages/")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    files = [(p, "line") for p in sorted((args.samples / "lines").glob("*"))]
    files += [(p, "page") for p in sorted((args.samples / "pages").glob("*"))]
    if not files:
        print(f"no sample images under {args.samples}", file=sys.stderr)
        return 1
    print(f"starting Redis, the API and {args.workers} workers ...", flush=True)
    with Topology(workers=args.workers, log_level="WARNING") as topology:
        client = ApiClient(topology.api_url)
        start = time.monotonic()
        jobs = [(path, client.submit(path.read_bytes(), mode=mode)["id"]) for path, mode in files]
        failed = 0
        for path, job_id in jobs:
            view = client.wait(job_id)
            print(f"\n== {path.relative_to(args.samples)}  [{view['status']}]")
            if view["status"] == "finished":
                result = ResultDocument.from_json(view["result"])
                print(result.text)
                print(f"   ({len(result.lines)} lines, batch of {result.batch_size}, "
                      f"{result.timings_ms.total:.0f} ms)")
            else:
                failed += 1
                print(f"   error: {view['error']}")
        print(f"\n{len(jobs) - failed}/{len(jobs)} jobs finished in {time.monotonic() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
