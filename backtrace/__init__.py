"""backtrace: prompt-background estimates for beam-dump searches.

Single muon tracks seen in the detector are transported backward with PUMAS
through the beam line (dump, magnets, collimators), their secondary
interactions are sampled along the way, the products are sent forward
through the detector, and the fake two-track vertices pointing to the dump
are counted in the signal and control regions.

    >>> import backtrace
    >>> b = backtrace.estimate("examples/sample.parquet")    # doctest: +SKIP
    >>> print(b.table)                                       # doctest: +SKIP
    >>> b.write("result/")                                   # doctest: +SKIP

    $ backtrace run --tracks examples/sample.parquet --out result/

The public names (:func:`estimate`, :class:`Options`, :class:`Background`,
:class:`Tracks`) load the library on first use: ``import backtrace`` itself
stays light, and PUMAS is loaded when a computation needs it.
"""

from backtrace._version import __version__

__all__ = ["estimate", "Options", "Background", "Tracks", "__version__"]

#: public name -> module that defines it (imported on first access)
_PUBLIC = {"estimate": "backtrace.api", "Options": "backtrace.api",
           "Background": "backtrace.api", "Tracks": "backtrace.tracks"}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'backtrace' has no attribute {name!r}")


def __dir__():
    return __all__
