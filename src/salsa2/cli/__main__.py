"""``python -m salsa2.cli``: the ``salsa2`` command without its installed script."""

from salsa2.cli import app

app()
