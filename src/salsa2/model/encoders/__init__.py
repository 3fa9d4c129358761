"""Audio and text encoder registries: ``AUDIO_ENCODERS.build(arch, frontend=..., **kwargs)``.

Adding an encoder is one module in this package plus one import line below.
"""

from salsa2.utils.registry import Registry

AUDIO_ENCODERS: Registry = Registry("audio encoder")
TEXT_ENCODERS: Registry = Registry("text encoder")

# Each import registers its builders.
from salsa2.model.encoders import small_cnn, small_transformer, text  # noqa: E402,F401
from salsa2.model.encoders import atst, concat, efficientat, passt  # noqa: E402,F401

__all__ = ["AUDIO_ENCODERS", "TEXT_ENCODERS"]
