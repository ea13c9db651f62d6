# One image for the api and worker services (docker-compose.yml picks the command).
FROM python:3.11-slim AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY shared shared
COPY api api
COPY worker worker
COPY producer producer
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home ocr
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER ocr
ENV OCR_API_HOST=0.0.0.0
CMD ["batchocr-worker"]
