"""Data shipped with backtrace: the top-level ``materials/`` and ``geometry/``
folders of the source tree, mapped here as packages so that they are read
through :mod:`importlib.resources` from any install."""
