"""``python -m backtrace`` is the ``backtrace`` command."""

from backtrace.cli import main

main()
