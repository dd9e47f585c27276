"""PUMAS return codes as Python exceptions.

Every PUMAS call made by backtrace checks its ``enum pumas_return``; a failure
raises the subclass of :class:`PumasError` matching the code, carrying the
PUMAS function name and message captured by our C error handler.
"""

from __future__ import annotations

__all__ = ["PumasError", "PumasLibraryError", "error_class", "RETURN_NAMES"]

#: enum pumas_return, PUMAS 1.2.3 (include/pumas.h), index = value.
RETURN_NAMES = (
    "SUCCESS", "ACCURACY_ERROR", "END_OF_FILE", "DECAY_ERROR",
    "DENSITY_ERROR", "DIRECTION_ERROR", "INCOMPLETE_FILE", "INDEX_ERROR",
    "PHYSICS_ERROR", "INTERNAL_ERROR", "IO_ERROR", "FORMAT_ERROR",
    "MEDIUM_ERROR", "MEMORY_ERROR", "MODEL_ERROR", "MISSING_LIMIT",
    "MISSING_RANDOM", "PATH_ERROR", "RAISE_ERROR", "TOO_LONG",
    "UNDEFINED_MDF", "UNKNOWN_ELEMENT", "UNKNOWN_MATERIAL",
    "UNKNOWN_PARTICLE", "VALUE_ERROR",
)


class PumasLibraryError(RuntimeError):
    """Raised when the PUMAS shared library cannot be found, opened or is the
    wrong version."""


class PumasError(RuntimeError):
    """Raised when a PUMAS call returns an error code."""

    code = -1

    def __init__(self, code: int, function: str, message: str):
        self.code = code
        self.function = function
        self.message = message
        name = RETURN_NAMES[code] if 0 <= code < len(RETURN_NAMES) else code
        super().__init__(f"PUMAS {name} in {function}: {message}")


_CLASSES: dict[int, type[PumasError]] = {}


def _make_classes() -> None:
    for code, name in enumerate(RETURN_NAMES[1:], start=1):
        cls_name = "Pumas" + "".join(w.capitalize() for w in name.split("_"))
        cls = type(cls_name, (PumasError,), {
            "code": code,
            "__doc__": f"Raised when PUMAS returns PUMAS_RETURN_{name}.",
        })
        _CLASSES[code] = cls
        globals()[cls_name] = cls
        __all__.append(cls_name)


_make_classes()


def error_class(code: int) -> type[PumasError]:
    """The exception class for a PUMAS return code."""
    return _CLASSES.get(code, PumasError)
