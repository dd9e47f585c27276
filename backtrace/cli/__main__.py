from backtrace.cli import main

main(prog_name="backtrace")
