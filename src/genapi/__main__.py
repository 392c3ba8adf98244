"""``python -m genapi`` runs the command line."""

from .cli import main

main()
