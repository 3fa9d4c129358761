"""Every salsa2 command answers --help."""

import pytest
from typer.testing import CliRunner

from salsa2.cli.main import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_top_level_help():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_info_rejects_a_folder_without_checkpoint(tmp_path):
    result = CliRunner().invoke(app, ["info", str(tmp_path)])
    assert result.exit_code != 0
    assert "config.json" in result.output
