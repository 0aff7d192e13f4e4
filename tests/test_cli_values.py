"""Bad command-line values get one line naming the option, the value and what is allowed,
before any work starts (argparse's usage error, exit status 2)."""

import pytest

from mlff_tools.cli import main


@pytest.mark.parametrize("argv, message", [
    (["train", "x.extxyz", "-o", "m.pt", "--batch-size", "0"],
     "argument --batch-size: expected a positive whole number, got '0'"),
    (["train", "x.extxyz", "-o", "m.pt", "--val-fraction", "1.5"],
     "argument --val-fraction: expected a fraction between 0 and 1, got '1.5'"),
    (["train", "x.extxyz", "-o", "m.pt", "--val-fraction", "0"],
     "argument --val-fraction: expected a fraction between 0 and 1, got '0'"),
    (["train", "x.extxyz", "-o", "m.pt", "--max-epochs", "0"],
     "argument --max-epochs: expected a positive whole number, got '0'"),
    (["sample", "--teacher", "emt", "--supercell", "abc", "-o", "s.extxyz"],
     "argument --supercell: supercell must be three positive repeats like 2x2x2"),
    (["sample", "--teacher", "emt", "--supercell", "0x1x1", "-o", "s.extxyz"],
     "got '0x1x1'"),
    (["sample", "--teacher", "emt", "--temperatures", "300,-5", "-o", "s.extxyz"],
     "argument --temperatures: expected positive numbers, got '300,-5'"),
    (["write-input", "--model", "m.pt", "--temperature", "-300", "-o", "r.lmp"],
     "argument --temperature: expected a number >= 0, got '-300'"),
    (["write-input", "--model", "m.pt", "--timestep", "50", "-o", "r.lmp"],
     "argument --timestep: 50 fs is no MD timestep for atoms"),
    (["write-input", "--model", "m.pt", "--dump-every", "0", "-o", "r.lmp"],
     "argument --dump-every: expected a positive whole number, got '0'"),
])
def test_bad_values_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sample_refuses_too_few_frames_for_the_split(tmp_path, capsys):
    """--frames 4 would write empty validation and test files: refused before any labelling."""
    code = main(["sample", "--teacher", "emt", "--structure", "Cu", "--frames", "4",
                 "-o", str(tmp_path / "s.extxyz")])
    assert code == 2
    assert ("--frames 4 leaves no frame for validation or test (split 0.8/0.1/0.1); ask for at "
            "least 6 frames") in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "nothing may be written"


def test_missing_structure_file_is_named(tmp_path, capsys):
    code = main(["sample", "--teacher", "emt", "--structure", "nosuch.cif",
                 "-o", str(tmp_path / "s.extxyz")])
    assert code == 2
    assert "structure file 'nosuch.cif' not found" in capsys.readouterr().err


def test_bare_command_prints_help_and_version(capsys):
    """`mlff-tools` alone prints the help (exit 0); `--version` prints the version."""
    from mlff_tools import __version__

    assert main([]) == 0
    assert "usage: mlff-tools" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mlff-tools {__version__}"


def test_every_option_has_help_with_its_default():
    """Each option of each subcommand says what it is; its default shows in --help (from
    the config dataclasses); pressures are in bar everywhere; one name for the epochs."""
    import argparse

    from mlff_tools.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert issubclass(command.formatter_class, argparse.ArgumentDefaultsHelpFormatter), name
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
        text = command.format_help()
        assert "GPa," not in text and "GPa;" not in text, f"{name} speaks GPa: {text}"
    assert "--max-epochs" in sub.choices["distill"].format_help()
    assert "(default: 200)" in sub.choices["train"].format_help()
    assert "bar (as LAMMPS metal units" in sub.choices["sample"].format_help()
    # unset options say what happens instead of "(default: None)"
    distill_help = sub.choices["distill"].format_help()
    assert "(default: None)" not in distill_help
    assert "0.5 with hydrogen" in " ".join(distill_help.split())
    assert "--melt" in distill_help


def test_user_errors_are_one_line_and_bugs_are_tracebacks(monkeypatch, capsys):
    """An MLFFError (or OSError) is the user's to fix: one line, exit 2. Anything else is a
    bug in mlff and must show its traceback, not hide behind a one-line message."""
    import mlff_tools.cli as cli
    from mlff_tools.errors import MLFFError

    def failing(error):
        def command(args):
            raise error
        return command

    import argparse

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    info = next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices["info"]
    for error in (MLFFError("the fix is X"), FileNotFoundError("no such file")):
        info.set_defaults(func=failing(error))
        assert cli.main(["info", "x.pt"]) == 2
        assert capsys.readouterr().err.strip() == f"mlff-tools info: error: {error}"
    info.set_defaults(func=failing(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["info", "x.pt"])
