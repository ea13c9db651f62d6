# One image for the api and worker services (docker-compose.yml picks the command), plus an
# optional rq-dashboard target and a local S3-protocol server for sites without a registry.
#
# With a registry: `docker compose build` (base python:3.11-slim, packages from the index).
# Air-gapped, or where `docker pull` fails: `scripts/docker_images` builds a Debian base with
# mmdebstrap and a wheelhouse on the host, then passes BASE, RUNTIME_BASE and PIP_OPTS="--no-index":
# nothing in these builds touches the network. BASE builds the venvs (it needs `python3 -m venv`);
# RUNTIME_BASE runs them and needs only the same Python (scripts/docker_images: no apt, no venv).
ARG BASE=python:3.11-slim
ARG RUNTIME_BASE=python:3.11-slim

# The host's wheelhouse (scripts/docker_images; empty with a registry), for both venv builds.
FROM ${BASE} AS wheels
COPY wheelhouse /wheels

# The user every service runs as.
FROM ${RUNTIME_BASE} AS user
RUN useradd --create-home --uid 10001 ocr

# Wheels installed into a venv in a throwaway stage; the runtime stage gets the venv only.
FROM wheels AS build
ARG PIP_OPTS=""
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY shared shared
COPY api api
COPY worker worker
COPY producer producer
COPY ops ops
RUN python3 -m venv /opt/batchocr \
 && /opt/batchocr/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_OPTS --find-links /wheels . \
 && find /opt/batchocr -name "__pycache__" -prune -exec rm -rf {} +

# What the worker never loads: OpenVINO's GPU/NPU plugins, the GPU's tuning cache, its C++
# headers and its non-ONNX model readers (~75 MB); ONNX Runtime's C-API library, which its Python
# module does not link (it carries its own copy: 35 MB); botocore's API models of every AWS
# service but S3 and the credential providers' STS, SSO and sign-in (~27 MB); pip itself;
# swagger-ui-py's files other than the three /v1/docs serves (api/openapi.py, ~25 MB) and the
# top-level "test" package that wheel installs; the packages' own test suites (NumPy's ~16 MB).
# The CPU plugin, the ONNX frontend and the IR reader stay. Also gone: what only the producer
# imports (batchocr-submit renders, lays out and writes PDFs: fontTools, reportlab, pikepdf with
# lxml, PDFium; ~66 MB) and its command. The api and worker never import it, and it runs where
# the scans are, installed with pip (README). And what only rapidocr's own pipeline imports
# (Shapely, pyclipper, OmegaConf with PyYAML, colorlog; ~20 MB): the wheel is our models'
# carrier, its package is never imported past its lazy __init__ (worker/model_loading.py).
FROM build AS pruned
RUN cd /opt/batchocr/lib/python3.11/site-packages \
 && rm -rf pip setuptools \
 && find swagger_ui/static -type f ! -name swagger-ui-bundle.js ! -name swagger-ui.css \
      ! -name favicon-32x32.png -delete \
 && rm -rf swagger_ui/handlers test openvino/include \
 && rm -f openvino/libs/libopenvino_intel_gpu_plugin.so* openvino/libs/libopenvino_intel_npu_plugin.so* \
          openvino/libs/cache.json \
          openvino/libs/libopenvino_tensorflow_frontend.so* openvino/libs/libopenvino_tensorflow_lite_frontend.so* \
          openvino/libs/libopenvino_paddle_frontend.so* openvino/libs/libopenvino_pytorch_frontend.so* \
          openvino/libs/libopenvino_jax_frontend.so* onnxruntime/capi/libonnxruntime.so* \
 && find botocore/data -mindepth 1 -maxdepth 1 -type d ! -name s3 ! -name sts ! -name sso ! -name sso-oidc \
      ! -name signin -exec rm -rf {} + \
 && find . -mindepth 2 -type d -name tests -prune -exec rm -rf {} + \
 && rm -rf fontTools fonttools-*.dist-info reportlab reportlab-*.dist-info pikepdf pikepdf.libs pikepdf-*.dist-info \
      lxml lxml-*.dist-info pypdfium2 pypdfium2_raw pypdfium2_cfg pypdfium2_cli pypdfium2-*.dist-info \
      /opt/batchocr/bin/batchocr-submit \
 && rm -rf shapely shapely.libs shapely-*.dist-info pyclipper pyclipper-*.dist-info omegaconf omegaconf-*.dist-info \
      yaml _yaml pyyaml-*.dist-info colorlog colorlog-*.dist-info \
 && find /opt/batchocr -name "__pycache__" -prune -exec rm -rf {} +

# Its check proves what is left runs on the runtime root (its libraries, not the build's):
# both runtimes build a session on the shipped recogniser and run it, the worker's pipelines
# load, and boto3 makes an S3 client. No bytecode is written, so the step adds nothing.
FROM user AS runtime
COPY --from=pruned /opt/batchocr /opt/batchocr
ENV PATH=/opt/batchocr/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OCR_API_HOST=0.0.0.0
RUN PYTHONDONTWRITEBYTECODE=1 python -c "$(printf '%s\n' \
      'import pathlib, boto3, numpy, onnxruntime, openvino, rapidocr, api.__main__, worker.__main__' \
      'rec = pathlib.Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"' \
      'lines = numpy.zeros((1, 3, 48, 320), numpy.float32)' \
      'ort = onnxruntime.InferenceSession(str(rec), providers=["CPUExecutionProvider"])' \
      'ort.run(None, {ort.get_inputs()[0].name: lines})' \
      'openvino.Core().compile_model(str(rec), "CPU")(lines)' \
      'boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")' \
      'from shared.settings import Settings; from worker.pipeline import OcrPipeline' \
      'settings = Settings.from_env({})' \
      'OcrPipeline.load(settings.default_model, settings).detect(numpy.full((64, 256, 3), 255, numpy.uint8))')"
USER ocr
EXPOSE 8000 9100
CMD ["batchocr-worker"]

# rq-dashboard in a venv of its own (rq and redis, not the OCR stack); rq pinned as batchocr pins it.
FROM wheels AS tools-build
ARG PIP_OPTS=""
RUN python3 -m venv /opt/dashboard && python3 -m venv /opt/s3 \
 && /opt/dashboard/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_OPTS --find-links /wheels \
      "rq-dashboard>=0.8" six "rq>=3.0,<3.1" \
 && /opt/s3/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_OPTS --find-links /wheels \
      "moto[server]>=5" flask-cors

FROM user AS dashboard
COPY --from=tools-build /opt/dashboard /opt/dashboard
ENV PATH=/opt/dashboard/bin:$PATH
USER ocr
EXPOSE 9181
CMD ["rq-dashboard", "--json", "--bind", "0.0.0.0", "--port", "9181"]

# moto's standalone S3-protocol server (in memory), for docker-compose.offline.yml: where no
# MinIO image can be pulled. A test stand-in, not storage: its objects go with the container.
FROM ${RUNTIME_BASE} AS s3-local
COPY --from=tools-build /opt/s3 /opt/s3
EXPOSE 9000
CMD ["/opt/s3/bin/moto_server", "-H", "0.0.0.0", "-p", "9000"]
