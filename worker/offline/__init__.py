"""Offline model tools: evaluation on labelled scans, scoring rules, quantisation.

Nothing here runs in a worker process; these modules import the pipeline, never the reverse
(the layout test enforces it).
"""
