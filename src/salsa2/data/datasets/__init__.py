"""Dataset preparers: each turns a dataset as published into the common tables (``salsa2.data.tables``).

``DATASETS.build(name, **params)`` returns a ``Prepared`` (audio table, captions table, rejects). Adding a
dataset is one module here plus one import line below.
"""

from salsa2.utils.registry import Registry

DATASETS: Registry = Registry("dataset")

from salsa2.data.datasets import folder  # noqa: E402,F401
from salsa2.data.datasets import clotho  # noqa: E402,F401
from salsa2.data.datasets import audiocaps  # noqa: E402,F401
from salsa2.data.datasets import wavcaps  # noqa: E402,F401
from salsa2.data.datasets import macs  # noqa: E402,F401
from salsa2.data.datasets import wavtext5k  # noqa: E402,F401

__all__ = ["DATASETS"]
