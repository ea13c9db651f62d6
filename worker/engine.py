"""Model sessions, built once per worker process with explicit thread settings: ONNX Runtime
(the default), or OpenVINO (``OCR_BACKEND=openvino``; bf16 where the CPU has it).

Both run the same ONNX file with the same pre- and post-processing; an engine is a callable
from one N x C x H x W float32 input to its one output.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.errors import ModelError
from shared.settings import Settings
from worker.backend_choice import Choice, openvino_bf16, openvino_core

logger = logging.getLogger(__name__)


def build_session(path: Path, threads: int, mem_arena: bool = True, spin: bool = True) -> ort.InferenceSession:
    """One CPU session for ``path`` with ``threads`` intra-op threads and no inter-op pool.

    Several workers share a host, so each session gets an explicit share of the cores rather
    than ONNX Runtime's default of "all of them" (which oversubscribes N workers N-fold).
    ``mem_arena`` keeps freed buffers for reuse: faster than allocating each run's. Every
    session of the process then draws on one arena (``shared_arena``), so the detector's
    buffers serve the recogniser after it instead of each model holding its own peak, and no
    per-shape memory pattern is planned (input shapes vary with every page and line width, so
    patterns would only pile up): a page worker's peak fell from 1.5 GB to 1.0 GB
    (docs/BENCHMARKS.md). Off: every run allocates and frees its own buffers.
    ``spin=False`` stops the session's threads busy-waiting after a run: for a small model run
    between the big ones, whose threads would otherwise compete with theirs for the cores.
    """
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = mem_arena
    options.enable_mem_pattern = False
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if mem_arena and shared_arena():
        options.add_session_config_entry("session.use_env_allocators", "1")
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    logger.info("loaded %s with %d intra-op threads", path.name, threads)
    return session


@functools.cache
def shared_arena() -> bool:
    """Register one CPU arena allocator with ONNX Runtime's process-wide environment, once
    (what sessions with ``session.use_env_allocators`` draw on); False if this ONNX Runtime
    cannot, and sessions then keep an arena each."""
    try:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
    except (AttributeError, RuntimeError, ort.capi.onnxruntime_pybind11_state.Fail) as exc:
        logger.warning("ONNX Runtime could not share one memory arena between sessions: %s", exc)
        return False
    return True


class Engine:
    """An ONNX Runtime session with one input and one output; counts its runs (for tests and
    metrics)."""

    backend = "onnxruntime"
    precision = "fp32"

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.calls = 0

    streams = 1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on ``batch`` (N x 3 x H x W float32); returns its only output."""
        self.calls += 1
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def map(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Each batch's output, in order (one after another here; ``OpenVinoEngine.map``
        overlaps them)."""
        return (self(batch) for batch in batches)

    @property
    def classes(self) -> int | None:
        """The output's last dimension where the model fixes it (a recogniser's class count)."""
        last = self.session.get_outputs()[0].shape[-1]
        return last if isinstance(last, int) else None

    def metadata(self, key: str) -> str | None:
        """A custom metadata entry of the ONNX file (PP-OCR keeps its vocabulary there)."""
        return self.session.get_modelmeta().custom_metadata_map.get(key)


class OpenVinoEngine:
    """The same ONNX file compiled by OpenVINO for the CPU with ``threads`` threads;
    ``precision`` "bf16" lets OpenVINO run in bfloat16 (AVX512_BF16 / AMX), "fp32" keeps
    float32. ``precision`` afterwards is what OpenVINO actually chose: a CPU without native bf16
    runs f32 (OpenVINO would emulate bf16 on any AVX-512 CPU: slower than f32, and less exact).
    ``streams`` > 1 splits the threads into that many inference streams of their own (for the
    recogniser: one small line input keeps 1 thread busier than 2, so ``map`` runs ``streams``
    chunks at once, 1.65x the lines/s of one 2-thread stream here); a lone ``__call__`` then
    runs on one stream. Not for use from two threads at once. OpenVINO compiles kernels for
    each new input shape (~0.15 s for a line shape, ~0.4 s for a page) and keeps them in a cache
    of ``cache_entries`` primitives (~30 per line shape, ~0.1 MB each), and buffers per shape and
    stream besides (docs/BENCHMARKS.md, "Peak memory of a page worker"). Outputs are copied out
    of OpenVINO's buffers."""

    backend = "openvino"

    def __init__(self, path: Path, threads: int, precision: str, cache_entries: int = 5000,
                 streams: int = 1) -> None:
        core = openvino_core()
        if core is None:
            raise ModelError("OCR_BACKEND=openvino needs the openvino package: pip install 'batchocr[openvino]'")
        self.model = core.read_model(str(path))
        self.streams = max(1, min(streams, threads))
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": self.streams,
                  "PERFORMANCE_HINT": "LATENCY" if self.streams == 1 else "THROUGHPUT",
                  "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" and openvino_bf16() else "f32",
                  "CPU_RUNTIME_CACHE_CAPACITY": str(cache_entries)}
        compiled = core.compile_model(self.model, "CPU", config)
        self.requests = [compiled.create_infer_request() for _ in range(self.streams)]
        chosen = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision = "bf16" if chosen == "bf16" else "fp32"
        self.calls = 0
        logger.info("loaded %s on OpenVINO (%s) with %d threads in %d stream(s)", path.name, self.precision,
                    threads, self.streams)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.array(self.requests[0].infer([batch], share_inputs=False)[0], copy=True)

    def map(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Each batch's output, in order, with up to ``streams`` batches running at once (the
        next batch is taken from ``batches``, e.g. preprocessed, while they run)."""
        free, running = list(self.requests), deque()
        try:
            for batch in batches:
                if not free:
                    yield self._collect(running, free)
                request = free.pop()
                self.calls += 1
                request.start_async([batch], share_inputs=False)
                running.append(request)
            while running:
                yield self._collect(running, free)
        finally:
            for request in running:  # a failed or abandoned map leaves nothing running
                request.wait()

    @staticmethod
    def _collect(running: deque, free: list) -> np.ndarray:
        request = running.popleft()
        request.wait()
        free.append(request)
        return np.array(request.get_output_tensor(0).data, copy=True)

    @property
    def classes(self) -> int | None:
        last = self.model.outputs[0].partial_shape[-1]
        return last.get_length() if last.is_static else None

    def metadata(self, key: str) -> str | None:
        path = ["framework", key]  # where OpenVINO's ONNX reader keeps the file's metadata
        return self.model.get_rt_info(path).astype(str) if self.model.has_rt_info(path) else None


@dataclass(frozen=True)
class EngineOptions:
    """How every engine of a worker is built: ``threads`` per engine (``Settings.threads``),
    ONNX Runtime's memory arena, and OpenVINO's compiled-shape cache (``Settings``)."""

    threads: int = 1
    mem_arena: bool = True
    openvino_cache: int = 5000

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        """A worker's engine options: ``Settings.threads`` (the cgroup-aware share of the cores)."""
        return cls(settings.threads, settings.ort_mem_arena, settings.openvino_cache)


def build_engine(path: Path, choice: Choice, options: EngineOptions, spin: bool = True,
                 streams: int = 1) -> Engine | OpenVinoEngine:
    """The engine for one model file on ``choice``'s backend and precision
    (``worker.backend_choice``); ``spin`` as in ``build_session``; ``streams`` as in
    ``OpenVinoEngine`` (ONNX Runtime runs one call at a time: two 1-thread runs at once gained
    it 9 % here, not worth a second session)."""
    if choice.backend == "openvino":
        return OpenVinoEngine(path, options.threads, choice.precision, options.openvino_cache, streams)
    return Engine(build_session(path, options.threads, options.mem_arena, spin))
