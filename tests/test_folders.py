"""Input, output and working folders that overlap are refused (exit 2) before
anything is touched, and nothing caldp did not make is ever removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caldp import folders
from caldp.cli import main
from caldp.datasets import parse
from caldp.storage import parse_input_uri, parse_output_uri
from tests.support import synthetic
from tests.support.pipeline_helpers import hashes, run

DS = "j8cb01u1q"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CALDP_HOME", str(home))
    return home


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root, with the files' contents."""
    tree = hashes(root)
    tree.update({str(p.relative_to(root)) + "/": "" for p in root.rglob("*") if p.is_dir()})
    return tree


def refused(tmp_path: Path, inp: str, out: str, capsys) -> str:
    before = snapshot(tmp_path)
    assert main([DS, inp, out, "caldp-config-local"]) == 2
    assert snapshot(tmp_path) == before  # nothing written, moved or removed anywhere
    return capsys.readouterr().err


@pytest.mark.fault(
    "retry from the kept working folder", "2 before anything is touched; the folder kept"
)
def test_retry_from_the_kept_working_folder_is_refused(tmp_path, home, capsys):
    kept = home / "caldp-work" / DS  # as a failed run leaves it
    synthetic.make_dataset(kept, DS)
    (kept / folders.WORK_MARKER).write_text("")
    (kept / "logs").mkdir()
    (kept / "logs" / "process.txt").write_text("the failed run's log\n")
    err = refused(tmp_path, f"file:{kept}", f"file:{tmp_path / 'out'}", capsys)
    assert "inside the working folder" in err and "copy the files elsewhere" in err


@pytest.mark.fault(
    "a delivered dataset folder as input", "2 before anything is touched; its files kept"
)
def test_a_delivered_dataset_folder_as_input_is_refused(tmp_path, home, capsys):
    out = tmp_path / "out"
    delivered = out / "data" / "acs" / DS
    synthetic.make_dataset(delivered, DS)
    (delivered / "notes.txt").write_text("the user's own notes\n")
    err = refused(tmp_path, f"file:{delivered}", f"file:{out}", capsys)
    assert "which the delivery replaces" in err


@pytest.mark.fault("output inside the working folder", "2 before anything is touched")
def test_an_output_inside_the_working_folder_is_refused(tmp_path, home, capsys):
    src = tmp_path / "src"
    synthetic.make_dataset(src, DS)
    err = refused(tmp_path, f"file:{src}", f"file:{home / 'caldp-work' / DS / 'out'}", capsys)
    assert "is removed after a success" in err


@pytest.mark.parametrize("where", ["same", "inside"])
@pytest.mark.fault("output equal to or inside the input folder", "2 before anything is written")
def test_an_output_in_the_input_folder_is_refused(tmp_path, home, capsys, where):
    src = tmp_path / "src"
    synthetic.make_dataset(src, DS)
    out = src if where == "same" else src / "out"
    err = refused(tmp_path, f"file:{src}", f"file:{out}", capsys)
    assert "give an output folder outside the inputs" in err


def test_swapped_input_and_output_are_refused(tmp_path, home, capsys):
    """The user's input folder given as output, and an output folder (holding it) as input."""
    src = tmp_path / "work" / "inputs"
    synthetic.make_dataset(src, DS)
    err = refused(tmp_path, f"file:{tmp_path / 'work'}", f"file:{src}", capsys)
    assert "inside the input folder" in err


@pytest.mark.fault("a caldp-work/<ds> caldp did not make", "2; never removed")
def test_a_working_folder_caldp_did_not_make_is_left_alone(tmp_path, home, capsys):
    src = tmp_path / "src"
    synthetic.make_dataset(src, DS)
    theirs = home / "caldp-work" / DS
    theirs.mkdir(parents=True)
    (theirs / "results.txt").write_text("not caldp's\n")
    err = refused(tmp_path, f"file:{src}", f"file:{tmp_path / 'out'}", capsys)
    assert "was not made by caldp" in err


def test_overlapping_s3_prefixes_are_refused(tmp_path, home, capsys):
    err = refused(tmp_path, "s3://bucket/data", "s3://bucket/data/j8cb01u1q", capsys)
    assert "the delivery would write over the inputs" in err


@pytest.mark.parametrize(
    "inp, out, caldp_home",
    [
        ("file:src", "file:out", "home"),
        ("file:src", "file:out", "src"),  # the input folder may hold the working folder
        ("file:src", "file:.", "."),  # the output folder may hold the input folder ...
        ("file:out/inputs", "file:out", "out"),  # ... and the working folder
        ("astroquery:", "file:.", "."),
        ("s3://bucket/inputs", "s3://bucket/outputs/j8cb01u1q", "."),  # AWS Batch
        ("s3://bucket/inputs", "s3://bucket/inputs-2", "."),
        ("file:src", "none", "src"),
    ],
)
def test_separate_folders_are_accepted(tmp_path, monkeypatch, inp, out, caldp_home):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALDP_HOME", str(tmp_path / caldp_home))
    dataset = parse(DS)
    folders.check_apart(
        dataset, parse_input_uri(inp), parse_output_uri(out), folders.work_dir(dataset)
    )


def test_symbolic_links_do_not_hide_an_overlap(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    os.symlink(tmp_path / "src", tmp_path / "link")
    dataset = parse(DS)
    with pytest.raises(folders.FoldersError, match="is the input folder"):
        folders.check_apart(
            dataset,
            parse_input_uri(f"file:{tmp_path / 'src'}"),
            parse_output_uri(f"file:{tmp_path / 'link'}"),
            tmp_path / "home" / "caldp-work" / DS,
        )


def test_success_removes_the_working_folder_and_an_empty_caldp_work(pipeline_env):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", DS)
    assert run(DS, tmp / "src", tmp / "out") == 0
    assert not (Path(os.environ["CALDP_HOME"]) / "caldp-work").exists()


def test_a_rerun_replaces_the_working_folder_caldp_kept(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", DS)
    monkeypatch.setenv("CALDP_STANDIN_EXIT", "2")
    assert run(DS, tmp / "src", tmp / "out") == 23
    kept = Path(os.environ["CALDP_HOME"]) / "caldp-work" / DS
    assert (kept / folders.WORK_MARKER).is_file()
    monkeypatch.delenv("CALDP_STANDIN_EXIT")
    assert run(DS, tmp / "src", tmp / "out") == 0
    assert not kept.exists()
