"""Help a newcomer can read: no truncated command descriptions, field meanings in
`methods info`."""

from __future__ import annotations

from click.testing import CliRunner

from cryobench.cli import cli


def test_top_level_help_is_not_truncated():
    out = CliRunner().invoke(cli, ["--help"]).output
    commands = out.split("Commands:")[1].strip().splitlines()
    assert len(commands) >= 9
    for line in commands:
        assert not line.rstrip().endswith("..."), line


def test_methods_info_says_what_fields_mean():
    out = CliRunner().invoke(cli, ["methods", "info", "unet3d"]).output
    assert "What the fields mean:" in out
    meaning = out.split("What the fields mean:")[1]
    assert "patch_size" in meaning and "Training patch edge" in meaning
    assert "``" not in meaning and ":func:" not in meaning
