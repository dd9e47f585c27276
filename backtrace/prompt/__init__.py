"""The prompt estimate: configuration, the per-batch pipeline (backward
paths, forced interactions, detector, candidates), rounds of histories,
the forcing allocation, the per-track posterior, yields, systematics.
"""
