"""Which inference backend and precision a model version runs on (``OCR_BACKEND``,
``OCR_PRECISION``), decided once when the worker loads it.

``auto`` (the default) runs OpenVINO in bfloat16 where all three hold: the ``openvino``
package is installed, the CPU computes bf16 natively (AVX512_BF16 or AMX, as OpenVINO reports
it), and the version's accuracy gate passed (``backend_gates.json``: CER on every dev set within
``tolerance`` of ONNX Runtime FP32, written by ``python -m bench.backend_gate --write``).
Otherwise ONNX Runtime FP32, the reference every gate is measured against. A named backend is
taken as asked; ``openvino`` with precision ``auto`` runs bf16 where the CPU has it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass
from typing import Any

from shared.errors import ModelError

GATES_FILE = "backend_gates.json"
REFERENCE = "onnxruntime:fp32"


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


def gate_passed(table: dict[str, Any], model: str, label: str) -> bool:
    """Whether ``label`` (``backend:precision``) read every dev set recorded for ``model``
    within the table's tolerance of the reference. A version or label never measured fails."""
    sets = table.get("models", {}).get(model, {}).get(label, {})
    if not sets or set(sets) != set(table.get("sets", ())):
        return False
    tolerance = float(table.get("tolerance", 0.0))
    return all(entry["cer"] <= entry["reference"] + tolerance for entry in sets.values())


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


def openvino_bf16() -> bool | None:
    """True if OpenVINO computes bf16 natively on this CPU, False if not, None if the openvino
    package is not installed."""
    core = openvino_core()
    return None if core is None else "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def choose(backend: str, precision: str, model: str) -> Choice:
    """The backend and precision ``model`` runs on, from the settings' ``backend`` and
    ``precision`` (``shared.settings.BACKENDS`` / ``PRECISIONS``).

    Raises:
        ModelError: ``openvino`` named but the package is not installed.
    """
    if backend == "onnxruntime":
        return Choice("onnxruntime", "fp32", "OCR_BACKEND=onnxruntime")
    bf16 = openvino_bf16()
    if backend == "openvino":
        if bf16 is None:
            raise ModelError("OCR_BACKEND=openvino needs the openvino package: pip install 'batchocr[openvino]'")
        if precision == "auto":
            precision = "bf16" if bf16 else "fp32"
        return Choice("openvino", precision, "OCR_BACKEND=openvino")
    if bf16 is None:
        return Choice("onnxruntime", "fp32", "auto: the openvino package is not installed")
    if not bf16:
        return Choice("onnxruntime", "fp32", "auto: this CPU has no native bf16")
    if not gate_passed(gate_table(), model, "openvino:bf16"):
        return Choice("onnxruntime", "fp32", f"auto: no passed openvino:bf16 accuracy gate for {model}")
    return Choice("openvino", "bf16", "auto: native bf16 and a passed accuracy gate")
