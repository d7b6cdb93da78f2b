"""caldp.log: redaction of secrets, the console and file handlers, and log files that
lose nothing to a full disk."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from caldp import log as caldp_log
from tests.support.disks import Mounts, fill

KEY_ID = "AKIA" + "ABCDEFGHIJKLMNOP"  # shaped like an AWS access key id, not one


@pytest.fixture(autouse=True)
def no_registered_secrets(monkeypatch):
    """Secrets registered by a test stay in that test."""
    monkeypatch.setattr(caldp_log, "_REGISTERED", set())


def test_secret_values_are_the_named_ones_longest_first():
    env = {
        "MY_API_KEY": "short-but-ok",
        "DB_PASSWORD": "a-much-longer-password",
        "AWS_SESSION_TOKEN": "tok",  # too short to redact safely
        "HOME": "/home/someone",  # not a credential's name
        "github_token": "lower-case-name",
    }
    assert caldp_log.secret_values(env) == [
        "a-much-longer-password",
        "lower-case-name",
        "short-but-ok",
    ]


def test_added_secrets_are_redacted_from_then_on():
    caldp_log.add_secrets({"ARCHIVE_PASSWORD": "hunter2-archive", "CRDS_CONTEXT": "hst_0729"})
    assert caldp_log.secret_values({}) == ["hunter2-archive"]  # only the credential


def test_redact_values_and_the_shapes_of_aws_credentials():
    text = f"user pw=sekret-value id={KEY_ID} aws_secret_access_key = abc/def+ghi end"
    assert caldp_log.redact(text, ["sekret-value"]) == (
        "user pw=*** id=*** aws_secret_access_key = *** end"
    )
    assert caldp_log.redact("nothing to hide", ["sekret-value"]) == "nothing to hide"


def test_redact_file_in_place_keeps_a_hard_links_old_text(tmp_path, monkeypatch):
    monkeypatch.setenv("CALDP_TEST_SECRET", "s3cr3t-value")
    trailer = tmp_path / "j8cb01u1q.tra"
    trailer.write_bytes(b"line 1\r\nthe secret is s3cr3t-value\n\xff bytes kept\n")
    os.link(trailer, tmp_path / "link")
    assert caldp_log.redact_file(trailer) is True
    assert trailer.read_bytes() == b"line 1\r\nthe secret is ***\n\xff bytes kept\n"
    assert b"s3cr3t-value" in (tmp_path / "link").read_bytes()  # a new file was renamed in
    assert caldp_log.redact_file(trailer) is False  # nothing left to redact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j8cb01u1q.tra", "link"]


def test_the_formatter_redacts_secrets_added_after_it_was_made(monkeypatch):
    formatter = caldp_log.RedactingFormatter()
    record = logging.LogRecord(
        "caldp.x", logging.INFO, __file__, 1, "pw %s", ("late-secret",), None
    )
    assert formatter.format(record).endswith("caldp.x: pw late-secret")
    caldp_log.add_secrets({"LATE_PASSWORD": "late-secret"})
    line = formatter.format(record)
    assert line.endswith("caldp.x: pw ***")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO    caldp\.x: ", line)


def test_console_is_set_up_once_and_redacts(capsys, monkeypatch):
    monkeypatch.setenv("CALDP_TEST_TOKEN", "console-token")
    root = logging.getLogger("caldp")
    before = list(root.handlers)
    try:
        caldp_log.setup_console(logging.INFO)
        handler = caldp_log.setup_console(logging.WARNING)
        consoles = [h for h in root.handlers if getattr(h, "_caldp_console", False)]
        assert consoles == [handler]
        logging.getLogger("caldp.test").info("not shown")
        logging.getLogger("caldp.test").warning("token console-token")
        assert capsys.readouterr().err.splitlines()[-1].endswith("caldp.test: token ***")
    finally:
        root.handlers[:] = before


def test_attach_file_logs_debug_until_detached(tmp_path, monkeypatch):
    monkeypatch.setenv("CALDP_TEST_SECRET", "file-secret")
    path = tmp_path / "logs" / "process.txt"
    handler = caldp_log.attach_file(path, "caldp.test.attach")
    logger = logging.getLogger("caldp.test.attach")
    logger.debug("debug with file-secret")
    caldp_log.detach(handler, "caldp.test.attach")
    logger.warning("after detaching")
    assert handler not in logger.handlers
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("DEBUG   caldp.test.attach: debug with ***")


# ----------------------------------------------------------------------------- full disk


FIRST = "before the disk filled up".ljust(4095, ".")


def _full_disk_log(mounts: Mounts, tmp_path: Path):
    """A log file on a full 64k tmpfs, and the 32k file whose removal makes room.  The
    log's first record fills a whole page, so that the next one needs a new page."""
    if not Mounts.allowed():
        pytest.skip("needs a size-limited file system (tmpfs mount, as root)")
    disk = tmp_path / "disk"
    mounts.tmpfs(disk, "64k")
    room = disk / "room"
    room.write_bytes(b"r" * 32768)
    handler = caldp_log.FileHandler(disk / "log.txt")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"caldp.test.{tmp_path.name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.info(FIRST)
    fill(disk)
    return logger, handler, room


def test_log_file_keeps_records_through_a_full_disk(mounts, tmp_path):
    """Records logged while the disk is full reach the file, in order, once there is room."""
    logger, handler, room = _full_disk_log(mounts, tmp_path)
    try:
        for i in range(300):
            logger.info("record %03d %s", i, "x" * 60)
        assert "record 299" not in handler.path.read_text(), "the disk was not full"
        room.unlink()
        logger.info("room again")
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = handler.path.read_text().splitlines()
    expected = [f"record {i:03d} {'x' * 60}" for i in range(300)]
    assert lines == [FIRST, *expected, "room again"]


def test_log_file_on_a_full_disk_keeps_the_latest_records(mounts, tmp_path, monkeypatch):
    """Past the bound of what is kept in memory, the oldest records are dropped, and the
    log says how much is missing there."""
    monkeypatch.setattr(caldp_log, "PENDING_BYTES", 4096)
    logger, handler, room = _full_disk_log(mounts, tmp_path)
    try:
        for i in range(300):
            logger.info("record %03d %s", i, "x" * 60)
        room.unlink()
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = handler.path.read_text().splitlines()
    assert lines[0] == FIRST
    note = re.fullmatch(r"\[(\d+) bytes of log lost here: the disk was full\]", lines[1])
    assert note, lines[:3]
    kept = lines[2:]
    assert kept[-1] == f"record 299 {'x' * 60}"
    first = int(kept[0].split()[1])
    assert kept == [f"record {i:03d} {'x' * 60}" for i in range(first, 300)]
    assert int(note.group(1)) == first * len(kept[0] + "\n")
    assert sum(len(line) + 1 for line in kept) <= 4096
