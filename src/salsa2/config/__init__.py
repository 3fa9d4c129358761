"""Configuration: params.yaml as frozen dataclasses, presets of overrides."""
