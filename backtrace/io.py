"""Atomic file output: write to a temporary file, then rename.

Nothing is ever half-written: if writing fails, the destination keeps its
old content (or does not exist) and the temporary file is removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic", "write_json_atomic",
           "OutputError", "check_writable", "check_writable_dir"]


class OutputError(OSError):
    """Raised when an output cannot be written (unwritable directory...)."""


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it over ``path`` on
    success, delete it on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp(ending, prefix, directory)
        fd, tmp = tempfile.mkstemp(".tmp", f".{path.name}.", path.parent)
        os.close(fd)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        yield Path(tmp)
        # mkstemp creates 0600 files: give the result the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_writable_dir(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and check that a file can be written in
    it, before any long computation; :class:`OutputError` names the path."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"cannot write into {directory}: it is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".backtrace-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"cannot write into {directory}: "
                          f"{err.strerror or err}") from err
    return directory


def check_writable(path: str | os.PathLike) -> Path:
    """Check that the output file ``path`` can be written (its directory
    writable, the path not a directory), before any long computation."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    check_writable_dir(path.parent if str(path.parent) else Path("."))
    if path.exists() and not os.access(path, os.W_OK):
        # atomic replacement still works in a writable directory, but a
        # read-only file is usually a mistake worth stopping for
        raise OutputError(f"cannot write {path}: the file is read-only")
    return path


def write_text_atomic(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json_atomic(path, payload) -> Path:
    return write_text_atomic(
        path, json.dumps(payload, indent=2, sort_keys=True, default=_default) + "\n")


def _default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_data_toml(path, packaged: str, error: type, what: str) -> tuple[dict, str, Path | None]:
    """(content, source name, directory) of a version-1 TOML data file:
    ``path``, or the packaged ``backtrace/data/<packaged>`` when None; every
    problem raised as ``error`` naming the file (``what``: how to call it)."""
    import sys
    from importlib import resources

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    if path is None:
        text, source, base = (resources.files("backtrace.data") / packaged).read_text(), \
            packaged, None
    else:
        p = Path(path)
        if not p.is_file():
            raise error(f"{what} {p}: no such file")
        text, source, base = p.read_text(), p.name, p.parent
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"{source}: not valid TOML ({err})") from None
    if raw.get("version") != 1:
        raise error(f"{source}: version {raw.get('version')!r} unsupported (expected 1)")
    return raw, source, base
