"""The batching OCR worker: rq jobs in, batched ONNX Runtime inference, results out."""
