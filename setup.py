"""Build hook: compiles backtrace's C layer (see backtrace/pumas/_build.py)."""

from setuptools import setup

setup(cffi_modules=["backtrace/pumas/_build.py:ffi"])
