"""Magnet scans and the optimiser.
"""
