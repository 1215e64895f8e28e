"""`python -m app.cli`: the same command as the installed `photo-relay` script."""

from app.cli.commands import main

main()
