"""``python -m feedfix`` runs the same CLI as the ``feedfix`` console script."""

from feedfix.cli import run

run()
