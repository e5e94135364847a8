"""``python -m cxrvae`` runs the command-line interface."""

from .cli import console

console()
