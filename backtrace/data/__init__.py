"""Packaged configuration files (regions, schemas)."""
