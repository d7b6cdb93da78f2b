"""caldp.cli: the ``caldp-process`` and ``caldp-explain`` command lines."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from caldp import cli
from caldp.cli import explain_main, main
from caldp.exit_codes import ExitCode
from tests.support.standins import standin_env


def test_uri_forms_name_the_schemes_of_each_role():
    assert cli.uri_forms("inputs") == "file:DIR, s3://bucket/prefix or astroquery:"
    assert cli.uri_forms("output") == "file:DIR, s3://bucket/prefix or none"


def _program(folder: Path, body: str) -> str:
    path = folder / "prog.e"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_program_version_is_the_first_line_it_prints(tmp_path):
    assert cli.program_version(_program(tmp_path, "echo 'CALXYZ 1.2'; echo more")) == "CALXYZ 1.2"
    said_on_stderr = _program(tmp_path, "echo 'CALXYZ 3.4' >&2; exit 1")
    assert cli.program_version(said_on_stderr) == "CALXYZ 3.4"
    assert cli.program_version(_program(tmp_path, "exit 3")) == "version unknown (exit 3)"
    missing = str(tmp_path / "nowhere.e")
    assert cli.program_version(missing) == "version unknown (FileNotFoundError)"


def test_versions_say_which_programs_are_not_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    text = cli.versions()
    assert text.splitlines()[0] == "caldp 0.1.0"
    assert "calacs.e not found on PATH" in text and "runastrodriz not found on PATH" in text


def test_caldp_explain_command(capsys):
    assert explain_main(["27", "40"]) == 0
    out = capsys.readouterr().out
    assert "27 BESTREFS_ERROR" in out and "40 SVM_ERROR" in out
    assert explain_main(["143"]) == 0
    assert "143 TERMINATED" in capsys.readouterr().out
    assert explain_main(["nonsense"]) == 2


def test_caldp_explain_help_and_unknown_codes(capsys):
    assert explain_main(["--help"]) == 0
    assert "with no CODE, list them all" in capsys.readouterr().out
    assert explain_main(["99"]) == 2
    assert "with no argument, caldp-explain lists them all" in capsys.readouterr().err


def test_main_runs_under_exit_receiver(monkeypatch, capsys):
    """An exception escaping caldp-process (a bug) still becomes an exit status."""

    def broken(argv):
        raise MemoryError("while parsing")

    monkeypatch.setattr(cli, "_main", broken)
    assert cli.main(["j8cb010b0"]) == ExitCode.CALDP_MEMORY_ERROR


@pytest.mark.parametrize(
    "argv",
    [
        ["u2xx0101t"],
        ["j8cb010b"],
        ["j8cb010b0", "ftp://x"],
        ["j8cb010b0", "file:.", "gopher:y"],
        ["j8cb010b0", "file:.", "file:.", "caldp-config-nowhere"],
        ["j8cb010b0", "file:.", "file:.", "caldp-config-local", "extra"],
        [],
    ],
)
def test_command_line_errors_do_no_work(pipeline_env, argv):
    assert main(argv) == 2
    assert not (Path(os.environ["CALDP_HOME"]) / "caldp-work").exists()


def test_help_lists_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "31  SUBPROCESS_MEMORY_ERROR" in out and "caldp-config-local" in out


def test_version(capsys, monkeypatch):
    monkeypatch.setenv("PATH", standin_env()["PATH"])
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    for name in ("caldp 0.1.0", "crds ", "calcos ", "drizzlepac "):
        assert name in out
    assert "calacs.e (" in out and "STAND-IN" not in out  # found, not run
    assert main(["--version", "--programs"]) == 0
    out = capsys.readouterr().out
    assert "calacs.e CALACS STAND-IN 0.0.0-standin" in out  # the program's own --version
    assert main(["--programs"]) == 2
