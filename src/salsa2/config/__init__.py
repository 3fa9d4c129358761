"""Configuration: params.yaml as frozen dataclasses, presets of overrides run as DVC experiments, their preview."""
