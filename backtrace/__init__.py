"""backtrace: prompt-background estimates for beam-dump searches.

Single muon tracks seen in the detector are transported backward with PUMAS
through the beam line (dump, magnets, collimators), their secondary
interactions are sampled along the way, the products are sent forward
through the detector, and the fake two-track vertices pointing to the dump
are counted in the signal and control regions.

    $ backtrace physics table --material iron --kinetic-energy 10 50 100
    $ backtrace run --tracks examples/sample.parquet --out result/

Nothing heavy is imported here: PUMAS is loaded on first use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backtrace")
except PackageNotFoundError:  # pragma: no cover - not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]


def __dir__():
    return __all__
