"""Shared test helpers: the repository's paths here; builders in the submodules.

``tiny`` (fake caches, text features and a few-hundred-parameter dual encoder), ``seeded_weights`` (weights and
waveforms shared with tests/fixtures/make_reference_outputs.py), ``paper`` (the paper preset's frontends),
``dvc_project`` (a shrunken copy of the project in a fresh git + DVC repository), ``search_demo`` (a search model
and index material on the tiny demo), ``file_server`` (a local HTTP server and tiny audio clips),
``released_model`` (a small checkpoint in the format of the authors' released one), ``released_use`` (a small
sound library with mel64 and kaldi128 caches, a trained-style checkpoint and a released stand-in).

This module imports nothing from salsa2, so scripts that only need a submodule stay light.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures"
