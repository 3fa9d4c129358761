"""benchmarks/bench_demo.py: per-stage wall times from DVC's "Running stage" lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import REPO

_spec = importlib.util.spec_from_file_location("bench_demo", REPO / "benchmarks" / "bench_demo.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

LOG = """0.100\tRunning stage 'demo':
0.200\t> python stages/demo.py
12.500\tRunning stage 'stage1@cnn':
40.000\tepoch 3: 50%
62.500\tRunning stage 'evaluate':
70.250\t<exit> 0
"""


def test_stage_times_run_until_the_next_stage_starts():
    stages, total, rc = bench.stage_times(bench.read_log(_write(LOG)))
    assert [n for n, _ in stages] == ["demo", "stage1@cnn", "evaluate"]
    assert [round(s, 3) for _, s in stages] == [12.4, 50.0, 7.75]
    assert total == 70.25 and rc == 0


def test_cli_prints_the_table_of_a_saved_log(capsys):
    assert bench.main(["--log", str(_write(LOG))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["stage1@cnn", "50.0", "s"]
    assert out[-1].split() == ["total", "70.2", "s"] or out[-1].split() == ["total", "70.3", "s"]


def test_failed_repro_is_reported():
    stages, _, rc = bench.stage_times(bench.read_log(_write(LOG.replace("<exit> 0", "<exit> 1"))))
    assert rc == 1 and len(stages) == 3
    assert bench.main(["--log", str(_write(LOG.replace("<exit> 0", "<exit> 1")))]) == 1


def test_log_without_time_stamps_names_the_line():
    with pytest.raises(SystemExit, match=r"repro.tsv:2: .Running stage"):
        bench.read_log(_write("1.0\tRunning stage 'demo':\nRunning stage 'x':\n"))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _write(text: str, name: str = "repro.tsv") -> Path:
    path = Path(name)
    path.write_text(text)
    return path
