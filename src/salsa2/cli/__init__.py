"""The ``salsa2`` command line (``main``: the pipeline's building blocks and model inspection; ``search``: index
and search a sound library)."""

from salsa2.cli.main import app

__all__ = ["app"]
