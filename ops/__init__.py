"""Operator tooling: the local launcher (``batchocr up``), the embedded Redis server, health
checks, the model-versions CLI and the demo. It imports ``shared`` only, and starts the
services (api, worker) as processes by module name, never by importing them."""
