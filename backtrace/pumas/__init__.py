"""cffi binding to the PUMAS muon-transport library (v1.2.3).

Only this subpackage touches ``ffi``/``lib``. Public pieces:

- :class:`Physics`: tables for the materials of an MDF, cached on disk;
- :class:`Context`: a transport context (modes, limits, accuracy);
- :func:`pumas_version`, :class:`PumasError`, :class:`PumasLibraryError`.
"""

from backtrace.pumas._errors import PumasError, PumasLibraryError
from backtrace.pumas._lib import library_path, load, pumas_version
from backtrace.pumas.context import Context, TransportOptions
from backtrace.pumas.physics import CacheWarning, Physics, PhysicsSettings, cache_dir

__all__ = [
    "CacheWarning",
    "Context",
    "Physics",
    "PhysicsSettings",
    "PumasError",
    "PumasLibraryError",
    "TransportOptions",
    "cache_dir",
    "library_path",
    "load",
    "pumas_version",
]


def __dir__():
    return __all__
