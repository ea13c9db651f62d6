"""Which inference backend and precision a model version runs on (``OCR_BACKEND``,
``OCR_PRECISION``), decided once when the worker loads it.

``auto`` (the default) runs OpenVINO in bfloat16 where all three hold: the ``openvino``
package is installed, the CPU computes bf16 natively (AVX512_BF16 or AMX, as OpenVINO reports
it), and the version's accuracy gate passed (``backend_gates.json``: CER on every dev set within
``tolerance`` of ONNX Runtime FP32, written by ``python -m bench.backend_gate --write``) on the
same model files and OpenVINO release. Otherwise ONNX Runtime FP32, the reference every gate is
measured against (also ``auto`` with ``OCR_PRECISION=fp32``). A named backend is taken as asked;
``openvino`` with precision ``auto`` or ``bf16`` runs bf16 where the CPU has it and f32
elsewhere (OpenVINO would emulate bf16 on other AVX-512 CPUs: slower than f32, and less exact),
so the label results and metrics carry is what runs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ModelError

GATES_FILE = "backend_gates.json"
REFERENCE = "onnxruntime:fp32"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """A backend and precision for one model version, and why (for the start log)."""

    backend: str
    precision: str
    reason: str = ""

    @property
    def label(self) -> str:
        """``backend:precision``, as results, metrics and ``batchocr-eval --backend`` name it."""
        return f"{self.backend}:{self.precision}"


def gate_table() -> dict[str, Any]:
    """The recorded backend gates (``worker/backend_gates.json``); empty if none were written."""
    resource = importlib.resources.files("worker") / GATES_FILE
    return json.loads(resource.read_text("utf-8")) if resource.is_file() else {}


def gate_passed(table: dict[str, Any], model: str, label: str, fingerprint: str = "") -> bool:
    """Whether ``label`` (``backend:precision``) read every dev set recorded for ``model``
    within the table's tolerance of the reference, measured on the same model files and
    OpenVINO release (``fingerprint``, when given). A version or label never measured fails."""
    entry = table.get("models", {}).get(model, {}).get(label, {})
    sets = entry.get("sets", {})
    if not sets or set(sets) != set(table.get("sets", ())):
        return False
    if fingerprint and entry.get("fingerprint") != fingerprint:
        return False
    tolerance = float(table.get("tolerance", 0.0))
    return all(figures["cer"] <= figures["reference"] + tolerance for figures in sets.values())


def fingerprint(files: list[Path]) -> str:
    """What a gate was measured on: the model files' contents and OpenVINO's release
    (major.minor), so a replaced file or an upgraded OpenVINO is gated afresh."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    try:
        release = ".".join(importlib.metadata.version("openvino").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        release = "none"
    return f"{digest.hexdigest()[:16]} openvino {release}"


@functools.cache
def openvino_core() -> Any:
    """This process's one ``openvino.Core``, never released; None if the package is missing.

    One per process, as OpenVINO advises, and for a sharper reason: its CPU plugin installs an
    alternate signal stack on the thread that creates it, and releasing it leaves the thread's
    signal stack pointing at freed memory, so the next Python signal handler (a job timeout's
    SIGALRM, a SIGTERM) crashed the process with SIGSEGV (tests/test_backends.py).
    """
    try:
        import openvino as ov  # imported here: an ONNX Runtime worker never loads it
    except ImportError:
        return None
    return ov.Core()


def _probe_bf16() -> bool | None:
    core = openvino_core()
    return None if core is None else "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_bf16() -> bool | None:
    """True if OpenVINO computes bf16 natively on this CPU, False if not, None if the openvino
    package is not installed or its CPU plugin does not start (logged)."""
    try:
        return _probe_bf16()
    except Exception as exc:  # a broken install must not stop an auto worker: ONNX Runtime runs
        logger.warning("OpenVINO did not start (%s: %s); running ONNX Runtime", type(exc).__name__, exc)
        return None


def choose(backend: str, precision: str, model: str, files: list[Path] | None = None) -> Choice:
    """The backend and precision ``model`` (its detector and recogniser ``files``) runs on,
    from the settings' ``backend`` and ``precision`` (``shared.settings.BACKENDS`` /
    ``PRECISIONS``). ``auto`` loads OpenVINO only for a version whose gate passed.

    Raises:
        ModelError: ``openvino`` named but the package is not installed.
    """
    if backend == "onnxruntime" or (backend == "auto" and precision == "fp32"):
        return Choice("onnxruntime", "fp32", f"OCR_BACKEND={backend}, OCR_PRECISION={precision}")
    if backend == "openvino":
        bf16 = openvino_bf16()
        if bf16 is None:
            raise ModelError("OCR_BACKEND=openvino needs the openvino package: pip install 'batchocr[openvino]'")
        if precision == "bf16" and not bf16:
            return Choice("openvino", "fp32", "OCR_BACKEND=openvino: OCR_PRECISION=bf16 but this CPU has no native bf16")
        return Choice("openvino", "bf16" if precision != "fp32" and bf16 else "fp32", "OCR_BACKEND=openvino")
    if not gate_passed(gate_table(), model, "openvino:bf16", fingerprint(files) if files else ""):
        return Choice("onnxruntime", "fp32", f"auto: no passed openvino:bf16 accuracy gate for {model} on these files")
    bf16 = openvino_bf16()
    if bf16 is None:
        return Choice("onnxruntime", "fp32", "auto: the openvino package is not installed or does not start")
    if not bf16:
        return Choice("onnxruntime", "fp32", "auto: this CPU has no native bf16")
    return Choice("openvino", "bf16", "auto: native bf16 and a passed accuracy gate")
