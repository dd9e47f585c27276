"""The forward prompt simulation (source → beam line with forced
interactions → detector) and the closures of the backward method.
"""
