"""The job contract: the options a client may set, and what an OCR job carries in rq's kwargs.

The payload is JSON (rq's JSON serializer, never pickle). It holds the options, who submitted
the job and when, and where its image is: a Redis key (``image_key``), an object the API stored
in the deployment's bucket (``image_object``, ``OCR_IMAGE_STORE=s3``, deleted when the job ends)
or a client's allowlisted S3 object (``image_uri``), never the bytes. ``JobPayload`` is its one declaration: the API writes it with
``to_kwargs``, and every reader (worker, reaper, API views) goes through ``from_job``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from rq.job import Job

from shared import priorities, results
from shared.charsets import LANGS
from shared.errors import BadOptionError
from shared.models import version
from shared.settings import Settings

MODES = ("page", "line")
OPTION_NAMES = ("mode", "model", "lang", "result_store", "priority")
IMAGE_REFS = ("image_key", "image_uri", "image_object")


@dataclass(frozen=True)
class JobOptions:
    """Per-job options. ``mode``: 'page' (detect, then recognise every line) or 'line';
    ``lang``: a charset hint (``shared.charsets``): 'auto', 'all' or 'en' ('' = the
    deployment's ``OCR_DEFAULT_LANG``);
    ``result_store``: 'redis' or 's3' ('' = the deployment's ``OCR_RESULT_STORE``);
    ``model``: a version ('' = chosen at submit time by the canary split, else the default);
    ``priority``: the queue it waits in (``shared.priorities``)."""

    mode: str = "page"
    model: str = ""
    lang: str = ""
    result_store: str = ""
    priority: str = priorities.DEFAULT

    @classmethod
    def parse(cls, raw: dict[str, Any], settings: Settings, *, priority: str = priorities.DEFAULT) -> JobOptions:
        """Options from a client (or a payload), checked by one set of rules for API and worker;
        ``priority`` is the entry point's default (the sync endpoint: interactive)."""
        unknown = set(raw) - set(OPTION_NAMES)
        if unknown:
            raise BadOptionError(f"unknown option(s): {', '.join(sorted(unknown))}")
        mode = str(raw.get("mode") or "page")
        if mode not in MODES:
            raise BadOptionError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        model = str(raw.get("model") or "")
        if model:
            version(model, settings.model_dir)
        lang = resolve_lang(str(raw.get("lang") or ""), settings)
        store = results.store_name(settings, str(raw.get("result_store") or ""))
        return cls(mode=mode, model=model, lang=lang, result_store=store,
                   priority=priorities.parse(raw.get("priority"), priority))


def resolve_lang(lang: str, settings: Settings) -> str:
    """A charset hint, '' meaning the deployment's default; BadOptionError for an unknown one."""
    lang = lang or settings.default_lang
    if lang not in LANGS:
        raise BadOptionError(f"lang must be one of {', '.join(LANGS)} (or empty); got {lang!r}")
    return lang


@dataclass(frozen=True)
class JobPayload:
    """rq's kwargs of an OCR job. ``submitted_at``: Unix time; ``owner``: the submitting API
    key's id ('' for an open API); exactly one of ``image_key``, ``image_object`` and
    ``image_uri`` is set; ``collection``: the id of the collection it belongs to, if any."""

    mode: str = "page"
    model: str = ""
    lang: str = ""
    result_store: str = ""
    submitted_at: float = 0.0
    owner: str = ""
    priority: str = ""
    callback_url: str = ""
    collection: str = ""
    image_key: str = ""
    image_uri: str = ""
    image_object: str = ""

    @classmethod
    def build(cls, options: JobOptions, *, submitted_at: float, owner: str, callback_url: str = "",
              collection: str = "", image_key: str = "", image_uri: str = "", image_object: str = "") -> JobPayload:
        return cls(**asdict(options), submitted_at=submitted_at, owner=owner, callback_url=callback_url,
                   collection=collection, image_key=image_key, image_uri=image_uri, image_object=image_object)

    def to_kwargs(self) -> dict[str, Any]:
        """The kwargs rq stores; an image reference, callback or collection that is not set is left out."""
        return {k: v for k, v in asdict(self).items() if v or k not in (*IMAGE_REFS, "callback_url", "collection")}

    @classmethod
    def from_job(cls, job: Job) -> JobPayload:
        """The payload of a stored job. Never raises: a job enqueued past the API with odd
        kwargs reads as strings and defaults, and fails on its options or image later, alone."""
        kwargs = job.kwargs if isinstance(job.kwargs, dict) else {}
        values: dict[str, Any] = {}
        for field in fields(cls):
            if kwargs.get(field.name) is None:
                continue
            if field.name == "submitted_at":
                try:
                    values[field.name] = float(kwargs[field.name])
                except (TypeError, ValueError):
                    continue
            else:
                values[field.name] = str(kwargs[field.name])
        return cls(**values)

    def options(self, settings: Settings) -> JobOptions:
        """The job's options, checked again by the worker (a job may come from past the API)."""
        return JobOptions.parse({name: getattr(self, name) for name in OPTION_NAMES}, settings)

    def public_options(self) -> dict[str, str]:
        """The options as a client sees them in a job's view (a job from before priorities: normal)."""
        return {name: getattr(self, name) for name in OPTION_NAMES} | {"priority": self.priority or priorities.DEFAULT}
