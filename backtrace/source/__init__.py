"""The dump source model: hadroproduction in the TAX, muons from π/K decays
and prompt sources, the forward and backward single-muon simulations and
the source density at the TAX exit.
"""
