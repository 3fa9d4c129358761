"""The ``salsa2`` command line."""
