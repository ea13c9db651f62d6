# One image for the api and worker services (docker-compose.yml picks the command), plus an
# optional rq-dashboard target. Build: wheels in a throwaway stage; the runtime stage gets the
# installed packages only (no compiler, no pip cache, no wheels).
FROM python:3.11-slim AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY shared shared
COPY api api
COPY worker worker
COPY producer producer
COPY ops ops
RUN python -m venv /opt/batchocr \
 && /opt/batchocr/bin/pip install --no-cache-dir . \
 && find /opt/batchocr -name "__pycache__" -prune -exec rm -rf {} + \
 && rm -rf /opt/batchocr/lib/python3.11/site-packages/pip /opt/batchocr/lib/python3.11/site-packages/setuptools

FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 ocr
COPY --from=build /opt/batchocr /opt/batchocr
ENV PATH=/opt/batchocr/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OCR_API_HOST=0.0.0.0
USER ocr
EXPOSE 8000 9100
CMD ["batchocr-worker"]

FROM runtime AS dashboard
USER root
RUN /opt/batchocr/bin/python -m ensurepip && /opt/batchocr/bin/pip install --no-cache-dir "rq-dashboard>=0.8" six
USER ocr
EXPOSE 9181
CMD ["rq-dashboard", "--json", "--bind", "0.0.0.0", "--port", "9181"]
