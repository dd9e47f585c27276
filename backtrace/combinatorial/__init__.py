"""The combinatorial background: random in-time pairs of single tracks,
normalised by a spill model.
"""
