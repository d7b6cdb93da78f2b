"""caldp.storage.file: ``file:`` inputs (a folder or its one tarball) and outputs (the
browsable tree, replaced whole per dataset, and the state messages beside it)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from caldp.datasets import parse
from caldp.errors import OutputError
from caldp.locks import Busy
from caldp.settings import Settings
from caldp.storage import DeliveryPlan, Uri
from caldp.storage import file as file_storage
from caldp.storage.tarball import TarballError

DS = parse("j8cb01u1q")


def files(folder: Path, **contents: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, text in contents.items():
        path = folder / name.replace("__", ".")
        path.write_text(text)
        made.append(path)
    return made


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def output(root: Path) -> file_storage.FileOutput:
    return file_storage.FileOutput(Uri("file", str(root)), Settings())


# ----------------------------------------------------------------------------- inputs


def test_fetch_lists_the_folders_files(tmp_path):
    src = tmp_path / "in"
    files(src, j8cb01u1q_raw__fits="raw", j8cb01u2q_raw__fits="other")
    (src / "sub").mkdir()
    got = file_storage.fetch(str(src), DS, tmp_path / "dest", Settings())
    assert [p.name for p in got] == ["j8cb01u1q_raw.fits", "j8cb01u2q_raw.fits"]


def test_fetch_extracts_the_datasets_one_tarball(tmp_path):
    src = tmp_path / "in"
    (raw,) = files(tmp_path / "made", j8cb01u1q_raw__fits="raw")
    with tarfile.open(src.with_name("t.tar.gz"), "w:gz") as tar:
        tar.add(raw, arcname=raw.name)
    src.mkdir()
    src.with_name("t.tar.gz").rename(src / "j8cb01u1q.tar.gz")
    files(src, j8cb01u2q__tar__gz="another dataset's")  # not this dataset's
    dest = tmp_path / "dest"
    dest.mkdir()
    got = file_storage.fetch(str(src), DS, dest, Settings())
    assert got == [dest / "j8cb01u1q_raw.fits"] and got[0].read_text() == "raw"


def test_fetch_refuses_two_tarballs_or_no_folder(tmp_path):
    src = tmp_path / "in"
    files(src, j8cb01u1q__tar__gz="", j8cb01u1q_inputs__tar__gz="")
    with pytest.raises(TarballError, match="several tarballs for j8cb01u1q") as refused:
        file_storage.fetch(str(src), DS, tmp_path / "dest", Settings())
    assert "j8cb01u1q.tar.gz, j8cb01u1q_inputs.tar.gz" in str(refused.value)
    with pytest.raises(TarballError, match="does not exist or is not a folder"):
        file_storage.fetch(str(tmp_path / "nowhere"), DS, tmp_path / "dest", Settings())


# ----------------------------------------------------------------------------- messages


def test_messages_name_themselves_and_follow_the_lifecycle(tmp_path):
    box = output(tmp_path).messages
    files(tmp_path / "messages", **{"submit-j8cb01u1q": ""})
    box.lock(DS.name)
    box.start(DS.name)
    assert (tmp_path / "messages" / "processing-j8cb01u1q").read_text() == (
        "processing-j8cb01u1q\n"
    )
    where = box.finish(DS.name, True, ["data/acs/j8cb01u1q/x.fits"])
    box.release(DS.name)
    trigger = tmp_path / "messages" / "processed-j8cb01u1q.trigger"
    assert where == str(trigger)
    assert trigger.read_text() == "processed-j8cb01u1q.trigger\ndata/acs/j8cb01u1q/x.fits\n"
    assert os.listdir(tmp_path / "messages") == ["processed-j8cb01u1q.trigger"]  # lock gone


def test_a_second_run_on_the_output_is_refused_until_the_first_releases(tmp_path):
    first, second = output(tmp_path).messages, output(tmp_path).messages
    first.lock(DS.name)
    with pytest.raises(Busy, match=f"the output {tmp_path} for j8cb01u1q"):
        second.lock(DS.name)
    first.release(DS.name)
    second.lock(DS.name)
    second.release(DS.name)


def test_start_removes_what_an_interrupted_message_write_left(tmp_path):
    messages = tmp_path / "messages"
    left = files(
        messages,
        **{
            ".processing-j8cb01u1q__0123abcd__tmp": "half",
            ".error-j8cb01u1q__89abcdef__tmp": "half",
        },
    )
    keep = files(messages, **{".error-j8cb01u1q__notours__tmp": "not a caldp temporary"})
    box = output(tmp_path).messages
    box.lock(DS.name)
    box.start(DS.name)
    box.release(DS.name)
    assert not any(p.exists() for p in left) and keep[0].exists()


def test_an_output_that_cannot_be_written_is_an_output_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = output(blocker / "out")
    with pytest.raises(OutputError, match="is not writable"):
        out.check()
    with pytest.raises(OutputError, match="is not writable"):
        out.messages.lock(DS.name)


# ----------------------------------------------------------------------------- delivery


def test_check_leaves_nothing_behind(tmp_path):
    output(tmp_path / "new" / "out").check()
    assert os.listdir(tmp_path / "new" / "out") == []


def test_deliver_lays_out_the_tree_and_links_the_products(tmp_path):
    work = tmp_path / "work"
    products = files(work, j8cb01u1q_flt__fits="flt", j8cb01u1q__tra="trailer")
    (preview,) = files(work / "previews", j8cb01u1q_flt__jpg="jpg")
    (env,) = files(work / "env", j8cb01u1q_cal_env__txt="X=1")
    logs_written = []

    def write_logs() -> list[Path]:
        logs_written.append(1)
        return files(work / "logs", process__txt="log")

    plan = DeliveryPlan(
        DS, products=products, previews=[preview], env_files=[env], write_logs=write_logs
    )
    out = tmp_path / "out"
    delivered = output(out).deliver(plan)
    final = out / "data" / "acs" / "j8cb01u1q"
    expected = [
        "data/acs/j8cb01u1q/env/j8cb01u1q_cal_env.txt",
        "data/acs/j8cb01u1q/j8cb01u1q.tra",
        "data/acs/j8cb01u1q/j8cb01u1q_flt.fits",
        "data/acs/j8cb01u1q/logs/process.txt",
        "data/acs/j8cb01u1q/previews/j8cb01u1q_flt.jpg",
    ]
    assert delivered.message_lines == expected and tree(out) == expected
    assert logs_written == [1]
    assert os.path.samefile(final / "j8cb01u1q_flt.fits", products[0])  # linked, not copied
    assert os.listdir(final.parent) == ["j8cb01u1q"]  # nothing left aside


def test_inputs_only_are_one_tarball_named_as_inputs(tmp_path):
    raws = files(tmp_path / "work", j8cb01u1q_raw__fits="raw", j8cb01u1q__tra="why")
    plan = DeliveryPlan(DS, products=raws, inputs_only=True)
    delivered = output(tmp_path / "out").deliver(plan)
    assert delivered.message_lines == ["data/acs/j8cb01u1q/j8cb01u1q_inputs.tar.gz"]
    tarball = tmp_path / "out" / delivered.message_lines[0]
    with tarfile.open(tarball) as tar:
        assert sorted(tar.getnames()) == ["j8cb01u1q/j8cb01u1q.tra", "j8cb01u1q/j8cb01u1q_raw.fits"]


def test_a_new_delivery_replaces_the_old_one_whole(tmp_path):
    out = tmp_path / "out"
    final = out / "data" / "acs" / "j8cb01u1q"
    output(out).deliver(DeliveryPlan(DS, products=files(tmp_path / "a", old_flt__fits="1")))
    stale = [final.with_name(".j8cb01u1q.partial-0123abcd"), final.with_name(".j8cb01u1q.old-1")]
    for folder in stale:
        files(folder, x__fits="left by a killed run")
    output(out).deliver(DeliveryPlan(DS, products=files(tmp_path / "b", new_flt__fits="2")))
    assert tree(out) == ["data/acs/j8cb01u1q/new_flt.fits"]


def test_a_failed_delivery_keeps_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "out"
    output(out).deliver(DeliveryPlan(DS, products=files(tmp_path / "a", old_flt__fits="1")))

    def full_disk(src, dest):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_storage, "_place", full_disk)
    with pytest.raises(OSError, match="No space"):
        output(out).deliver(DeliveryPlan(DS, products=files(tmp_path / "b", new_flt__fits="2")))
    assert tree(out) == ["data/acs/j8cb01u1q/old_flt.fits"]
    assert os.listdir(out / "data" / "acs") == ["j8cb01u1q"]  # no partial folder left


def test_deliver_log_replaces_one_log(tmp_path):
    out = tmp_path / "out"
    (log,) = files(tmp_path / "work", process__txt="first")
    assert output(out).deliver_log(DS, log) == "data/acs/j8cb01u1q/logs/process.txt"
    log.write_text("again, longer")
    output(out).deliver_log(DS, log, again=True)
    assert tree(out) == ["data/acs/j8cb01u1q/logs/process.txt"]
    assert (out / "data/acs/j8cb01u1q/logs/process.txt").read_text() == "again, longer"


def test_output_none_delivers_nothing_but_writes_the_logs(tmp_path):
    none = file_storage.NoOutput(Uri("none", ""), Settings())
    written = []
    plan = DeliveryPlan(DS, write_logs=lambda: written.append(1) or [])
    none.check()
    assert none.deliver(plan).message_lines == [] and written == [1]
    assert none.deliver_log(DS, tmp_path / "process.txt") == ""
    none.messages.lock(DS.name)
    assert none.messages.finish(DS.name, True, []) == ""
    assert list(tmp_path.iterdir()) == []
