#!/usr/bin/env bash
# Install the peers bench/accuracy.py compares against: Tesseract 5 from Debian (English and
# Simplified Chinese data) and RapidOCR 3.10's full pipeline (its own deps come with the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim >/dev/null
.venv/bin/python -m pip install -q "rapidocr==3.10.0"
tesseract --version | head -1
