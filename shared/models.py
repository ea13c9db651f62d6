"""The named OCR models a deployment can serve: which files, from which package.

Models ship inside PyPI wheels (nothing is downloaded at run time). The API validates a job's
``model`` option against these names; the worker loads the files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One model version: a DBNet detector and a CTC recogniser from one package.

    ``rec_height`` is the recogniser's fixed input height (px); the vocabulary is read from the
    recognition model's ONNX metadata (``character``), so it always travels with the weights.
    """

    name: str
    package: str
    det_file: str
    rec_file: str
    rec_height: int = 48


MODELS: dict[str, ModelSpec] = {
    "ppocrv6-small": ModelSpec(
        name="ppocrv6-small",
        package="rapidocr",
        det_file="models/PP-OCRv6_det_small.onnx",
        rec_file="models/PP-OCRv6_rec_small.onnx",
    ),
}
