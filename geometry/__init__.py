"""Beam-line geometry descriptions (TOML): see README.md in this folder."""
