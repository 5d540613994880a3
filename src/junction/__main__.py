"""``python -m junction``: the command line, for processes started by the supervisor."""

from junction.cli import main

main()
