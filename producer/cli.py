"""``batchocr-submit SOURCE --out DIR``: OCR a tree, manifest or S3 prefix of scans in bulk.

Interrupt it at any point and run the same command again: finished documents are skipped,
jobs already in the queue are reused, the rest are submitted. Exit status: 0 when every
document was written, 1 when some failed (listed in ``<out>/_batchocr/failures.tsv``), 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from producer.formats import FORMATS
from producer.outputs import write_atomic
from producer.pages import DEFAULT_DPI, DEFAULT_MAX_PAGES, DEFAULT_MAX_PIXELS
from producer.run import BulkRun, RunConfig, Stats, collection_id
from producer.transport import HttpTransport, RedisTransport
from shared.auth import key_id
from shared.entry import console_script
from shared.errors import BatchOcrError, ConfigError
from shared.priorities import PRIORITIES
from shared.s3 import ObjectStore
from shared.settings import Settings

DEFAULT_API = "http://127.0.0.1:8000"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batchocr-submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a directory, a manifest file (one path or s3:// URI per line) or s3://bucket/prefix")
    parser.add_argument("--out", required=True, type=Path, help="output directory (mirrors the input tree)")
    parser.add_argument("--formats", default="json,txt", help=f"comma-separated: {','.join(FORMATS)} (default json,txt)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--api", default=os.environ.get("BATCHOCR_API_URL", DEFAULT_API),
                       help=f"submit over HTTP to this API (default; $BATCHOCR_API_URL or {DEFAULT_API})")
    where.add_argument("--redis", nargs="?", const="", default=None, metavar="URL",
                       help="submit straight to Redis (URL, or $REDIS_URL / OCR_REDIS_URL if omitted)")
    parser.add_argument("--api-key-file", type=Path, help="file holding the API key (default: $BATCHOCR_API_KEY)")
    parser.add_argument("--mode", choices=("page", "line"), default="page")
    parser.add_argument("--lang", default="", help="charset hint: auto, all or en (default: the deployment's OCR_DEFAULT_LANG)")
    parser.add_argument("--model", default="", help="model name (default: the deployment's)")
    parser.add_argument("--result-store", choices=("redis", "s3"), default="", help="override the deployment's")
    parser.add_argument("--priority", choices=PRIORITIES, default="bulk",
                        help="queue the run's jobs wait in (default bulk: interactive work goes first)")
    parser.add_argument("--dpi", type=float, default=DEFAULT_DPI, help="PDF render DPI; also assumed for images without one")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="a PDF page larger than this at --dpi renders at the DPI that fits "
                             f"(default {DEFAULT_MAX_PIXELS:,}: the API's default OCR_MAX_IMAGE_PIXELS)")
    parser.add_argument("--max-pages", type=int, default=DEFAULT_MAX_PAGES,
                        help=f"a document with more pages fails, unsubmitted (default {DEFAULT_MAX_PAGES:,})")
    parser.add_argument("--text-layer", choices=("skip", "redo", "force"), default="skip",
                        help="PDF pages that already carry text: skip = keep it, do not OCR (default); redo = "
                             "OCR again pages whose only text is an invisible earlier OCR layer, dropping it; "
                             "force = OCR every page")
    parser.add_argument("--pdfa", action="store_true",
                        help="write the searchable PDF as PDF/A-2b (a PDF input's pages are then rasterized)")
    parser.add_argument("--max-in-flight", type=int, default=32, help="jobs submitted but not finished (backpressure)")
    parser.add_argument("--retry-failed", action="store_true", help="resubmit pages whose jobs failed before")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        parser.error(f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    if args.max_in_flight < 1 or not 36 <= args.dpi <= 1200 or args.max_pixels < 1_000_000 or args.max_pages < 1:
        parser.error("--max-in-flight and --max-pages must be >= 1, --dpi within 36..1200 and --max-pixels >= 1000000")
    args.formats = formats
    return args


def report(out: Path, stats: Stats) -> None:
    """Summary on stderr; summary.json and failures.tsv under ``<out>/_batchocr/``."""
    rate = stats.pages_done / stats.seconds if stats.seconds else 0.0
    print(f"documents: {stats.documents} ({stats.written} written, {stats.already_done} already done, "
          f"{stats.failed_documents} failed)\npages: {stats.pages_done} done, {stats.pages_failed} failed; "
          f"{stats.submitted} jobs submitted, {stats.reused} reused\n"
          f"time: {stats.seconds:.1f} s, {rate:.2f} pages/s", file=sys.stderr)
    meta = out / "_batchocr"
    summary = {k: v for k, v in asdict(stats).items() if k != "failures"} | {"pages_per_s": round(rate, 3)}
    write_atomic(meta / "summary.json", json.dumps(summary, indent=1).encode())
    rows = ["document\tpage\tkind\tmessage\tjob_id"] + [
        "\t".join(str(f[k]).replace("\t", " ").replace("\n", " ") for k in ("document", "page", "kind", "message", "job_id"))
        for f in stats.failures]
    write_atomic(meta / "failures.tsv", ("\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))  # names as on disk
    if stats.failures:
        print(f"failures: {meta / 'failures.tsv'} (re-run with --retry-failed to try them again)", file=sys.stderr)


@console_script("batchocr-submit")
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.redis:
            settings = settings.replace(redis_url=args.redis)
        objects = ObjectStore(settings)
        api_key = _api_key(args.api_key_file)
        transport = RedisTransport(settings, objects) if args.redis is not None else HttpTransport(args.api, api_key)
        options = {k: v for k, v in (("mode", args.mode), ("lang", args.lang), ("model", args.model),
                                     ("result_store", args.result_store), ("priority", args.priority)) if v}
        config = RunConfig(args.source, args.out, args.formats, options, dpi=args.dpi,
                           max_in_flight=args.max_in_flight, retry_failed=args.retry_failed,
                           text_layer=args.text_layer, pdfa=args.pdfa, max_pixels=args.max_pixels,
                           max_pages=args.max_pages,
                           tenant=key_id(api_key) if api_key and args.redis is None else "")
        return _run(config, transport, objects, progress=not args.no_progress)
    except BatchOcrError as exc:
        print(f"batchocr-submit: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("batchocr-submit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _api_key(path: Path | None) -> str | None:
    """The key from ``--api-key-file`` or ``$BATCHOCR_API_KEY`` (never a command-line argument:
    those show in ``ps``)."""
    if path is not None:
        try:
            return path.read_text("utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"--api-key-file: {exc.strerror}") from None
    return os.environ.get("BATCHOCR_API_KEY") or None


def _run(config: RunConfig, transport, objects: ObjectStore, *, progress: bool) -> int:
    from tqdm import tqdm

    opened = transport.open_collection(collection_id(config), f"batchocr-submit {config.source}", config.options)
    print(f"collection: {opened['id']} ({opened['total']} jobs so far; progress at GET /v1/collections/{opened['id']} "
          "and in the Web UI)", file=sys.stderr)
    run = BulkRun(config, transport, objects)
    todo = run.plan()
    with tqdm(total=run.stats.pages, unit="page", disable=not progress, dynamic_ncols=True) as bar:
        def update(done: int, failed: int) -> None:
            bar.n = done + failed
            bar.set_postfix(failed=failed, refresh=False)
            bar.refresh()

        run.progress = update
        stats = run.run(todo)
    report(config.out, stats)
    return 1 if stats.failed_documents else 0


if __name__ == "__main__":
    sys.exit(main())
