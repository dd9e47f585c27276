"""The installed version of backtrace (ground floor: every layer may read it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backtrace")
except PackageNotFoundError:  # pragma: no cover - not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
