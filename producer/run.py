"""A bulk run: every page of every document through the queue, with a bound on jobs in flight.

Pages are submitted with deterministic job ids (content hash + options), so a re-run after a
crash or Ctrl-C skips documents whose outputs exist, reuses jobs that are queued or finished,
and only submits pages that never reached the queue: nothing is OCRed twice, nothing is missing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer import outputs
from producer.formats.layout import PageOutput
from producer.pages import DEFAULT_DPI, DEFAULT_MAX_PAGES, DEFAULT_MAX_PIXELS, iter_pages, page_count, read_document
from producer.sources import Document, discover
from producer.transport import MISSING, PageRejected, Transport
from shared.jobs import TERMINAL
from shared.s3 import ObjectStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    source: str
    out: Path
    formats: list[str]
    options: dict[str, str]
    dpi: float = DEFAULT_DPI
    max_in_flight: int = 32
    retry_failed: bool = False
    poll_s: float = 0.25
    max_bytes: int = 512 * 1024 * 1024
    # The API key's id: part of every job id, so two tenants' identical pages never share a job.
    tenant: str = ""
    # PDF pages that carry text: skip | redo | force (producer.text_pages).
    text_layer: str = "skip"
    # Searchable PDFs as PDF/A-2b (a PDF input's pages are then rasterized: producer.formats.pdfa).
    pdfa: bool = False
    # PDF pages that would render larger at ``dpi`` are rendered at the DPI that fits.
    max_pixels: int = DEFAULT_MAX_PIXELS
    # A document with more pages fails before any of them is submitted.
    max_pages: int = DEFAULT_MAX_PAGES


def collection_id(config: RunConfig) -> str:
    """The run's collection id: the same source, output directory, options and key give the
    same id, so a re-run finds its collection (and its progress) again."""
    source = config.source if "://" in config.source else str(Path(config.source).resolve())
    options = json.dumps(config.options, sort_keys=True)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"batchocr-submit:{config.tenant}:{source}:{config.out.resolve()}:{options}"))


@dataclass
class Stats:
    documents: int = 0
    already_done: int = 0
    written: int = 0
    failed_documents: int = 0
    pages: int = 0
    submitted: int = 0
    reused: int = 0
    pages_done: int = 0
    pages_failed: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DocState:
    doc: Document
    pages: dict[int, PageOutput | dict[str, str] | None] = field(default_factory=dict)
    dpi: dict[int, float] = field(default_factory=dict)
    all_submitted: bool = False

    def resolved(self) -> bool:
        return self.all_submitted and all(value is not None for value in self.pages.values())


class BulkRun:
    """Drives one run. ``progress(done, failed)`` is called as pages resolve."""

    def __init__(self, config: RunConfig, transport: Transport, objects: ObjectStore | None,
                 progress: Callable[[int, int], None] = lambda done, failed: None) -> None:
        self.config = config
        self.transport = transport
        self.objects = objects
        self.progress = progress
        self.stats = Stats()
        self.in_flight: dict[str, list[tuple[DocState, int]]] = {}

    def plan(self) -> list[Document]:
        """The documents still to do (outputs incomplete); counts pages for the progress bar.
        Two inputs whose output names coincide (``a:b.png`` and ``a_b.png``) would overwrite
        each other: the second one fails with a reason instead."""
        todo, origins = [], {}
        for doc in discover(self.config.source, self.objects):
            self.stats.documents += 1
            if origins.setdefault(doc.name, doc.origin) != doc.origin:
                self._failure(doc, 0, "name_collision", f"its output name is also that of {origins[doc.name]}")
                self.stats.failed_documents += 1
                continue
            if outputs.is_complete(self.config.out, doc.name, self.config.formats):
                self.stats.already_done += 1
            else:
                pages = page_count(doc, self.objects, self.config.max_bytes, self.config.max_pages)
                if pages > self.config.max_pages:
                    self._failure(doc, 0, "too_many_pages", f"it has more than {self.config.max_pages:,} pages "
                                  "(--max-pages); nothing of it was submitted")
                    self.stats.failed_documents += 1
                    continue
                todo.append(doc)
                self.stats.pages += pages
        return todo

    def run(self, todo: list[Document]) -> Stats:
        started = time.monotonic()
        for doc in todo:
            self._submit_document(doc)
            self._collect()
        while self.in_flight:
            time.sleep(self.config.poll_s)
            self._collect()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _submit_document(self, doc: Document) -> None:
        """Submit the document's pages as they are read. A page that cannot be read fails the
        document alone; a queue that cannot be reached (after backoff) ends the run, which a
        re-run resumes."""
        state = DocState(doc)
        pages = iter_pages(doc, dpi=self.config.dpi, objects=self.objects, max_bytes=self.config.max_bytes,
                           text_layer=self.config.text_layer, max_pixels=self.config.max_pixels)
        while True:
            try:
                page = next(pages)
            except StopIteration:
                break
            except Exception as exc:
                logger.warning("%s: %s", doc.name, exc)
                state.pages[0] = self._failure(doc, 0, "unreadable_document", f"{type(exc).__name__}: {exc}")
                break
            while len(self.in_flight) >= self.config.max_in_flight:
                time.sleep(self.config.poll_s)
                self._collect()
            state.pages[page.number], state.dpi[page.number] = None, page.dpi
            if page.text is not None:  # the page keeps its own text: nothing to OCR
                state.pages[page.number] = PageOutput(page.number, "", page.text, page.dpi)
                self.stats.pages_done += 1
                self.progress(self.stats.pages_done, self.stats.pages_failed)
                continue
            self._submit_page(state, page)
        state.all_submitted = True
        self._maybe_finish(state)

    def _submit_page(self, state: DocState, page) -> None:
        job_id = page.job_id(self.config.options, self.config.tenant)
        try:
            created = self.transport.submit(page, self.config.options, job_id, self.config.retry_failed)
        except PageRejected as exc:
            state.pages[page.number] = self._failure(state.doc, page.number, "rejected", exc.message)
            return
        if created:
            self.stats.submitted += 1
        else:
            self.stats.reused += 1
        self.in_flight.setdefault(job_id, []).append((state, page.number))

    def _collect(self) -> None:
        """Poll jobs in flight; hand each finished or failed one to its document(s)."""
        for job_id in list(self.in_flight):
            view = self.transport.view(job_id)
            if view is MISSING:  # its record expired (result TTL): a re-run submits it again
                view = {"status": "failed", "error": {"kind": "expired", "message": "job expired; run again"}}
            if view["status"] not in TERMINAL:
                continue
            for state, number in self.in_flight.pop(job_id):
                if view["status"] == "finished":
                    state.pages[number] = PageOutput(number, job_id, {**view["result"], "source": "ocr"},
                                                     state.dpi[number])
                    self.stats.pages_done += 1
                else:
                    error = view.get("error") or {}
                    state.pages[number] = self._failure(state.doc, number, error.get("kind", view["status"]),
                                                        error.get("message", ""), job_id)
                self.progress(self.stats.pages_done, self.stats.pages_failed)
                self._maybe_finish(state)

    def _maybe_finish(self, state: DocState) -> None:
        if not state.resolved():
            return
        results = [state.pages[n] for n in sorted(state.pages)]
        pages = [p for p in results if isinstance(p, PageOutput)]
        if len(pages) == len(results):
            try:
                self._write(state.doc, pages)
                self.stats.written += 1
            except Exception as exc:
                self.stats.failed_documents += 1
                self.stats.failures.append({"document": state.doc.name, "page": 0, "kind": "write",
                                            "message": f"{type(exc).__name__}: {exc}", "job_id": ""})
        else:
            self.stats.failed_documents += 1
        state.pages.clear()

    def _write(self, doc: Document, pages: list[PageOutput]) -> None:
        rasterize = self.config.text_layer == "force" or self.config.pdfa
        if doc.kind == "pdf" and "pdf" in self.config.formats and not rasterize:
            original = read_document(doc, self.objects, self.config.max_bytes)  # its pages kept as they are
            outputs.write_document(self.config.out, doc.name, self.config.formats, pages, iter(()), original)
            return
        # Scans, or a PDF's pages rasterized: with --text-layer force (as OCRmyPDF's --force-ocr),
        # or for PDF/A, which an arbitrary original cannot be made into.
        images = (page.data or b"" for page in iter_pages(
            doc, dpi=self.config.dpi, objects=self.objects, max_bytes=self.config.max_bytes,
            fetch_s3_images=True, text_layer="force" if rasterize else self.config.text_layer,
            max_pixels=self.config.max_pixels)
        ) if "pdf" in self.config.formats else iter(())
        outputs.write_document(self.config.out, doc.name, self.config.formats, pages, images, pdfa=self.config.pdfa)

    def _failure(self, doc: Document, page: int, kind: str, message: str, job_id: str = "") -> dict[str, str]:
        self.stats.pages_failed += 1
        failure = {"document": doc.name, "page": page, "kind": kind, "message": message, "job_id": job_id}
        self.stats.failures.append(failure)
        self.progress(self.stats.pages_done, self.stats.pages_failed)
        return failure
