"""ONNX Runtime sessions, built once per worker process with explicit thread settings."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

logger = logging.getLogger(__name__)


def build_session(path: Path, threads: int, mem_arena: bool = True, spin: bool = True) -> ort.InferenceSession:
    """One CPU session for ``path`` with ``threads`` intra-op threads and no inter-op pool.

    Several workers share a host, so each session gets an explicit share of the cores rather
    than ONNX Runtime's default of "all of them" (which oversubscribes N workers N-fold).
    ``mem_arena`` keeps freed buffers for reuse: faster, but the process holds its peak memory.
    ``spin=False`` stops the session's threads busy-waiting after a run: for a small model run
    between the big ones, whose threads would otherwise compete with theirs for the cores.
    """
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = mem_arena
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    logger.info("loaded %s with %d intra-op threads", path.name, threads)
    return session


class Engine:
    """A model session with one input and one output; counts its runs (for tests and metrics)."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on ``batch`` (N x 3 x H x W float32); returns its only output."""
        self.calls += 1
        return self.session.run([self.output_name], {self.input_name: batch})[0]
