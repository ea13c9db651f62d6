"""Clients that feed batchocr: the demo now, the bulk archive producer later."""
