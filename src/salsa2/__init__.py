"""salsa2: language-based audio retrieval with estimated audio-caption correspondences."""

__version__ = "0.1.0"
