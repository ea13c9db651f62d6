"""One typed, frozen settings object, read from ``OCR_*`` environment variables.

Parsing is strict: a malformed number or boolean raises :class:`shared.errors.ConfigError` naming the
variable, instead of silently falling back to a default. Build it once in an entry point
(``Settings.from_env()``) and pass it explicitly. An empty variable is never an error
(see :class:`Settings`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from shared.charsets import DEFAULT as CHARSET_DEFAULT, LANGS
from shared.cpu import available_cpus
from shared.setting_values import check as _check, host_port as _host_port, parse as _parse
from shared.models import BUILTIN, DEFAULT
from shared import priorities

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
RESULT_STORES = ("redis", "s3")
IMAGE_STORES = ("redis", "s3")
BACKENDS = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
# Field metadata of a setting whose empty variable means "none" rather than its default.
EMPTY_IS_NONE = {"empty": ""}


@dataclass(frozen=True)
class Settings:
    """All knobs of a batchocr deployment. Env name = ``OCR_`` + upper-cased field name.

    An empty (or blank) variable follows one rule for every setting: it is the setting's
    "none" value where it has one (no rate limit, no S3 prefix: fields marked
    ``EMPTY_IS_NONE``; and the settings that are empty by default, such as no keys, no input
    buckets, boto3's own credentials), and otherwise the same as an unset variable: the
    default. Never an error, because compose files pass ``${VAR:-}`` for what the host leaves
    unset.
    """

    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)  # may carry a password
    # Redis Sentinel ("host:port,host:port"): the master named redis_sentinel_master is found
    # through them and followed across failovers (password and db still from redis_url).
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str = field(default="", repr=False)
    # A submit is answered 202 only once this many replicas hold the job (Redis WAIT, at most
    # submit_replica_wait_ms); 0: at once (asynchronous replication can lose it in a failover).
    submit_replicas: int = 0
    submit_replica_wait_ms: int = 1000
    queue_name: str = "ocr"
    # Batching: a batch closes at max_batch jobs or max_wait_ms after its first job.
    max_batch: int = 8
    max_wait_ms: int = 20
    # Priorities (shared.priorities): served ('' = all), a lower one's least share, idle re-look (s).
    priorities: str = ""
    min_share: float = 0.1
    idle_poll_s: float = 0.2
    # Recognition chunks: lines per chunk x padded width (px at height 48) stays under this.
    rec_chunk_width: int = 8192
    # Line input widths round up to a multiple of this (px): lines of one rounded width share a
    # session call and no line is padded for a batch-mate, so a line reads the same in any batch.
    rec_width_bucket: int = 32
    rec_max_width: int = 4096
    # Blank input (px) after each line, decoded with it: right context for the last characters.
    rec_tail_pad: int = 16
    # Horizontal scale of line crops at the model's height; 0 = the model's own (ppocrv6-small
    # reads best at 0.85: docs/BENCHMARKS.md).
    rec_width_scale: float = 0.0
    # Lines read as English (lang=en, or found English by lang=auto): a word the recogniser
    # rated nearly as likely as its greedy reading replaces it (worker/lexicon.py).
    lexicon: bool = True
    # Charset hint of jobs that give none (shared/charsets.py): auto, all or en.
    default_lang: str = CHARSET_DEFAULT
    # ONNX Runtime threads per session; 0 = cores on this host / workers_per_host.
    intra_op_threads: int = 0
    workers_per_host: int = 1
    # ONNX Runtime's CPU memory arena, one per process shared by every session (worker/engine.py).
    ort_mem_arena: bool = True
    # Inference backend and precision (worker/backend_choice.py): auto = OpenVINO bf16 where the
    # package is installed, the CPU has native bf16 and the model's accuracy gate passed, else
    # ONNX Runtime FP32; auto with OCR_PRECISION=fp32 is ONNX Runtime FP32. bf16 needs OpenVINO.
    backend: str = "auto"
    precision: str = "auto"
    # OpenVINO's kernel cache per model, in primitives (~30 per line shape, ~0.1 MB each).
    openvino_cache: int = 5000
    # At start, run each model once per line width bucket up to this width (and one page), so
    # the first jobs do not pay for first-use shapes (OpenVINO compiles per shape); 0 = off.
    warm_up_width: int = 1024
    # Input limits.
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    # Admission control (shared/backlog.py): jobs waiting or running, and the bytes of their
    # images held in Redis; 0 = half of Redis's maxmemory (jobs at 2 KB each), or 100,000 jobs
    # and 1 GiB where Redis has no maxmemory. Each API key may hold this share of both.
    max_queued_jobs: int = 0
    max_queued_bytes: int = 0
    queue_share_per_key: float = 0.5
    # A Redis whose maxmemory-policy may evict keys loses accepted jobs: refused unless this is set.
    allow_evicting_redis: bool = False
    # Where uploaded images wait for a worker: "redis" (image_ttl_s) or "s3" (OCR_S3_BUCKET under
    # s3_image_prefix, deleted when the job ends): a queued job then costs Redis ~1.3 KB.
    image_store: str = "redis"
    # Lifetimes (seconds). A job not taken by a worker within image_ttl_s fails (image_expired).
    image_ttl_s: int = 3600
    result_ttl_s: int = 86400
    job_timeout_s: int = 600
    # A running job's lease: renewed every lease_s / 3 while its worker lives; a job whose lease
    # lapses is queued again by any worker's reaper. max_crashes: worker deaths before "poison".
    lease_s: int = 30
    max_crashes: int = 3
    # Models and their post-processing.
    default_model: str = DEFAULT
    # Extra model versions (manifest.json, e.g. INT8 ones); how many a worker keeps loaded.
    model_dir: str = ""
    max_loaded_models: int = 2
    # Detection input: long side at most (1600: 5-15 % more pages/s than 2000 at +0.0004 CER at
    # most on the page sets, docs/BENCHMARKS.md), short side enlarged towards det_min_side.
    det_max_side: int = 1600
    det_min_side: int = 736
    det_thresh: float = 0.3
    det_box_thresh: float = 0.5
    det_unclip_ratio: float = 1.6
    min_line_confidence: float = 0.5
    # Pages turned 90, 180 or 270 degrees are found and read upright, and single upside-down
    # lines turned (worker/orientation.py: a 0/180 line classifier from the rapidocr wheel).
    orientation: bool = True
    # Pages skewed by 1.5 degrees or more are turned level and detected again (worker/deskew.py).
    deskew: bool = True
    # Tests only: a worker SIGKILLs itself mid-batch on an image holding these bytes ('' = off).
    test_crash_marker: str = ""
    # API server (gunicorn: worker processes x threads).
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 2
    api_threads: int = 4
    # POST /api/v1/ocr waits this long for its job before answering 504 with the job id.
    sync_timeout_s: int = 30
    # A worker's Prometheus /metrics port (0 = off; the API serves /metrics on its own port).
    metrics_port: int = 0
    # "text" or "json" (one JSON object per line, with job and batch ids as fields).
    log_format: str = "text"
    # API keys (comma-separated, and/or a file with one per line); none = an open API.
    api_keys: str = field(default="", repr=False)
    api_keys_file: str = ""
    # Per-key rate limits (flask-limiter syntax, Redis-backed); empty = no limit.
    rate_limit_submit: str = field(default="100/second", metadata=EMPTY_IS_NONE)
    rate_limit_read: str = field(default="600/second", metadata=EMPTY_IS_NONE)
    # Completion callbacks (shared/callbacks.py): hosts allowed besides public https ones ("host" or
    # "host:port", comma-separated; these may use http and private addresses); the secret each
    # key's signing secret derives from (none: callbacks refused); tries, each try's timeout (s),
    # and the cap on the backoff between tries (s).
    callback_hosts: str = ""
    callback_secret: str = field(default="", repr=False)
    callback_attempts: int = 8
    callback_timeout_s: float = 5.0
    callback_backoff_max_s: float = 300.0
    # Where results go: "redis" (rq's result, result_ttl_s) or "s3" (one JSON object per job).
    result_store: str = "redis"
    # S3 (or any S3-protocol server). Empty credentials = boto3's standard chain (env, profile, role).
    s3_bucket: str = ""
    # Key prefix of result objects; empty = none (results at the bucket's root).
    s3_prefix: str = field(default="batchocr/results/", metadata=EMPTY_IS_NONE)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    # Comma-separated buckets that jobs may name as inputs (s3://bucket/key); empty = none.
    s3_input_buckets: str = ""
    s3_presign_ttl_s: int = 3600
    # Key prefix of uploaded images with OCR_IMAGE_STORE=s3 (a bucket lifecycle rule on it is the
    # backstop for images whose job never ended).
    s3_image_prefix: str = "batchocr/images/"

    def __post_init__(self) -> None:
        _check(self.max_batch >= 1 and self.max_batch <= 64, "OCR_MAX_BATCH must be 1..64")
        _check(0 <= self.max_wait_ms <= 10_000, "OCR_MAX_WAIT_MS must be 0..10000")
        _check(0 < self.min_share <= 0.3, "OCR_MIN_SHARE must be within (0, 0.3]: two lower priorities share")
        _check(priorities.named(self.priorities) <= set(priorities.PRIORITIES),
               f"OCR_PRIORITIES must name some of {', '.join(priorities.PRIORITIES)} (comma-separated), or be empty")
        _check(0.01 <= self.idle_poll_s <= 5, "OCR_IDLE_POLL_S must be 0.01..5")
        _check(self.rec_chunk_width >= self.rec_max_width, "OCR_REC_CHUNK_WIDTH must be >= rec_max_width")
        _check(self.rec_max_width >= 64, "OCR_REC_MAX_WIDTH must be >= 64")
        _check(2 <= self.lease_s <= 3600, "OCR_LEASE_S must be 2..3600")
        _check(self.max_wait_ms * 2 < self.lease_s * 1000, "OCR_MAX_WAIT_MS must be under half of OCR_LEASE_S")
        _check(1 <= self.max_crashes <= 100, "OCR_MAX_CRASHES must be 1..100")
        _check(8 <= self.rec_width_bucket <= 512 and self.rec_width_bucket % 8 == 0,
               "OCR_REC_WIDTH_BUCKET must be a multiple of 8 in 8..512")
        _check(0 <= self.rec_tail_pad <= 512, "OCR_REC_TAIL_PAD must be 0..512")
        _check(self.rec_width_scale == 0 or 0.25 <= self.rec_width_scale <= 2,
               "OCR_REC_WIDTH_SCALE must be 0 (the model's own) or 0.25..2")
        _check(self.intra_op_threads >= 0, "OCR_INTRA_OP_THREADS must be >= 0")
        _check(self.submit_replicas >= 0 and self.submit_replica_wait_ms >= 1,
               "OCR_SUBMIT_REPLICAS must be >= 0 and OCR_SUBMIT_REPLICA_WAIT_MS >= 1")
        _check(self.workers_per_host >= 1, "OCR_WORKERS_PER_HOST must be >= 1")
        for name in ("max_image_bytes", "max_image_pixels", "image_ttl_s", "result_ttl_s", "job_timeout_s"):
            _check(getattr(self, name) > 0, f"OCR_{name.upper()} must be > 0")
        for name in ("det_thresh", "det_box_thresh", "min_line_confidence"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"OCR_{name.upper()} must be within 0..1")
        _check(self.det_unclip_ratio > 0, "OCR_DET_UNCLIP_RATIO must be > 0")
        _check(self.det_max_side >= 64, "OCR_DET_MAX_SIDE must be >= 64")
        _check(0 <= self.det_min_side <= self.det_max_side, "OCR_DET_MIN_SIDE must be 0..det_max_side")
        _check(1 <= self.api_port <= 65535, "OCR_API_PORT must be 1..65535")
        _check(1 <= self.api_workers <= 64 and 1 <= self.api_threads <= 256, "OCR_API_WORKERS 1..64, OCR_API_THREADS 1..256")
        _check(0 <= self.metrics_port <= 65535, "OCR_METRICS_PORT must be 0..65535")
        _check(1 <= self.sync_timeout_s <= 600, "OCR_SYNC_TIMEOUT_S must be 1..600")
        _check(self.log_format in ("text", "json"), "OCR_LOG_FORMAT must be text or json")
        _check(self.default_lang in LANGS, f"OCR_DEFAULT_LANG must be one of {', '.join(LANGS)}")
        _check(self.result_store in RESULT_STORES, f"OCR_RESULT_STORE must be one of {', '.join(RESULT_STORES)}")
        _check(self.result_store != "s3" or bool(self.s3_bucket), "OCR_RESULT_STORE=s3 needs OCR_S3_BUCKET")
        _check(self.s3_presign_ttl_s > 0, "OCR_S3_PRESIGN_TTL_S must be > 0")
        _check(self.backend in BACKENDS, f"OCR_BACKEND must be one of {', '.join(BACKENDS)}")
        _check(self.precision in PRECISIONS, f"OCR_PRECISION must be one of {', '.join(PRECISIONS)}")
        _check(self.precision != "bf16" or self.backend == "openvino", "OCR_PRECISION=bf16 needs OCR_BACKEND=openvino")
        _check(self.openvino_cache >= 1, "OCR_OPENVINO_CACHE must be >= 1")
        _check(self.warm_up_width >= 0, "OCR_WARM_UP_WIDTH must be >= 0")
        self._check_stores_and_bounds()
        _check(1 <= self.max_loaded_models <= 16, "OCR_MAX_LOADED_MODELS must be 1..16")
        # Versions from OCR_MODEL_DIR's manifest are checked where the process starts
        # (shared.models.check_default): settings do no I/O.
        _check(self.default_model in BUILTIN or bool(self.model_dir),
               f"OCR_DEFAULT_MODEL must be one of {', '.join(sorted(BUILTIN))}, or a version in OCR_MODEL_DIR")

    def _check_stores_and_bounds(self) -> None:
        """Where uploads and results go, the backlog bounds (``shared.backlog``), and callbacks'."""
        _check(self.image_store in IMAGE_STORES, f"OCR_IMAGE_STORE must be one of {', '.join(IMAGE_STORES)}")
        _check(self.image_store != "s3" or bool(self.s3_bucket), "OCR_IMAGE_STORE=s3 needs OCR_S3_BUCKET")
        _check(bool(self.s3_image_prefix.strip("/")) and self.s3_image_prefix.endswith("/"),
               "OCR_S3_IMAGE_PREFIX must be a folder ending in '/' (uploads are deleted under it)")
        _check(not self.s3_prefix or not (self.s3_image_prefix.startswith(self.s3_prefix)
                                          or self.s3_prefix.startswith(self.s3_image_prefix)),
               "OCR_S3_IMAGE_PREFIX and OCR_S3_PREFIX must not contain one another (uploads are deleted)")
        _check(self.max_queued_jobs >= 0, "OCR_MAX_QUEUED_JOBS must be >= 0 (0 = from Redis's maxmemory)")
        _check(self.max_queued_bytes == 0 or self.max_queued_bytes >= self.max_image_bytes,
               "OCR_MAX_QUEUED_BYTES must be 0 (from Redis's maxmemory) or >= OCR_MAX_IMAGE_BYTES")
        _check(0 < self.queue_share_per_key <= 1, "OCR_QUEUE_SHARE_PER_KEY must be within (0, 1]")
        _check(1 <= self.callback_attempts <= 20 and 0.1 <= self.callback_timeout_s <= 30
               and 1 <= self.callback_backoff_max_s <= 3600,
               "OCR_CALLBACK_ATTEMPTS must be 1..20, OCR_CALLBACK_TIMEOUT_S 0.1..30, OCR_CALLBACK_BACKOFF_MAX_S 1..3600")

    @property
    def input_buckets(self) -> frozenset[str]:
        """Buckets jobs may read their image from (``OCR_S3_INPUT_BUCKETS``)."""
        return frozenset(b.strip() for b in self.s3_input_buckets.split(",") if b.strip())

    @property
    def api_bind(self) -> str:
        """The address the API server binds: ``host:port``, an IPv6 host in brackets."""
        return _host_port(self.api_host, self.api_port)

    @property
    def api_local_url(self) -> str:
        """Where the API's own host reaches it (health checks): loopback if it binds every interface."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.api_host, self.api_host)
        return f"http://{_host_port(host, self.api_port)}"

    @property
    def threads(self) -> int:
        """Intra-op threads per ONNX session: this process's CPUs (affinity, cgroup quota) / ``workers_per_host``."""
        if self.intra_op_threads:
            return self.intra_op_threads
        return max(1, available_cpus() // self.workers_per_host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``OCR_<FIELD>`` (and ``REDIS_URL``); empty: the "none" value where there is one, else the default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if env.get("REDIS_URL", "").strip():
            values["redis_url"] = env["REDIS_URL"]
        for f in fields(cls):
            raw = env.get("OCR_" + f.name.upper())
            if raw is None:
                continue
            if not raw.strip():
                if "empty" in f.metadata:
                    values[f.name] = f.metadata["empty"]
                continue
            values[f.name] = _parse(f.name, raw, type(f.default))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
