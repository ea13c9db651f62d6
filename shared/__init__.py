"""The contract between batchocr's API, worker and producer: settings, errors, Redis keys, jobs."""
