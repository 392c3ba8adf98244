"""``python -m genapi`` runs the command line."""

from .cli.main import main

main()
