"""``python -m backtrace`` is the ``backtrace`` command."""

from .cli import main

main()
