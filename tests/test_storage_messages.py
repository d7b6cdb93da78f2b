"""The state-message lifecycle of caldp.storage.messages, on in-memory boxes.

The two boxes differ as the ``file:`` and S3 boxes do: one locks beside its
messages and names each message on its first line, the other's lock is
``processing-<ds>`` itself.  The backends' own tests (test_storage_file,
test_storage_s3) check the same lifecycle on a folder and on moto's S3.
"""

from __future__ import annotations

import logging

import pytest

from caldp.errors import OutputError
from caldp.locks import Busy
from caldp.storage.messages import (
    MessageBox,
    NullMessageBox,
    final_name,
    processing_name,
    replaced_by_processing,
)

DS = "j8cb01u1q"
PROCESSING = f"processing-{DS}"
TRIGGER = f"processed-{DS}.trigger"
ERROR = f"error-{DS}"


class Store:
    """Messages shared by the boxes of several runs, and what was done to them, in order."""

    def __init__(self, **messages: str):
        self.messages = dict(messages)
        self.locks: set[str] = set()
        self.ops: list[tuple[str, str]] = []


class MemoryBox(MessageBox):
    def __init__(self, store: Store):
        super().__init__()
        self.store = store
        self.fail_removing: str | None = None

    def where(self, name: str) -> str:
        return f"memory:{name}"

    def _write(self, name: str, text: str) -> None:
        self.store.ops.append(("write", name))
        self.store.messages[name] = text

    def _remove(self, name: str) -> None:
        if name == self.fail_removing:
            raise OutputError(f"cannot remove {name}")
        if name in self.store.messages:
            self.store.ops.append(("remove", name))
            del self.store.messages[name]


class LockBeside(MemoryBox):
    """As ``file:``: a lock of its own; each message names itself."""

    names_itself = True

    def _acquire(self, dataset: str) -> None:
        if dataset in self.store.locks:
            raise Busy(f"{dataset} is locked")
        self.store.locks.add(dataset)
        self.store.ops.append(("lock", dataset))

    def _unlock(self, dataset: str) -> None:
        self.store.locks.discard(dataset)
        self.store.ops.append(("unlock", dataset))


class ProcessingIsTheLock(MemoryBox):
    """As S3: ``processing-<ds>``, created only if there is none, is the lock."""

    processing_is_the_lock = True

    def _acquire(self, dataset: str) -> None:
        name = processing_name(dataset)
        if name in self.store.messages:
            raise Busy(f"{name} exists")
        self._write(name, "run 1\n")


BOXES = [LockBeside, ProcessingIsTheLock]


def test_names():
    assert processing_name(DS) == PROCESSING
    assert final_name(DS, True) == TRIGGER
    assert final_name(DS, False) == ERROR
    assert replaced_by_processing(DS) == (f"submit-{DS}", ERROR, TRIGGER)


@pytest.mark.parametrize("box_class", BOXES)
def test_start_writes_processing_then_removes_what_it_replaces(box_class):
    others = {f"placed-{DS}": "orchestrator\n", "submit-other": "orchestrator\n"}
    store = Store(**{f"submit-{DS}": "orchestrator\n", ERROR: "old\n", **others})
    box = box_class(store)
    box.lock(DS)
    box.start(DS)
    assert store.messages.keys() == {PROCESSING, *others}
    written = store.ops.index(("write", PROCESSING))
    removed = [i for i, op in enumerate(store.ops) if op[0] == "remove"]
    assert sorted(store.ops[i][1] for i in removed) == sorted([f"submit-{DS}", ERROR])
    assert all(i > written for i in removed)


@pytest.mark.parametrize("ok", [True, False])
@pytest.mark.parametrize("box_class", BOXES)
def test_finish_writes_the_final_message_then_removes_processing(box_class, ok):
    name, other = (TRIGGER, ERROR) if ok else (ERROR, TRIGGER)
    store = Store()
    box = box_class(store)
    box.lock(DS)
    box.start(DS)
    store.messages[other] = "left by a run that crashed after its final message\n"
    store.ops.clear()
    where = box.finish(DS, ok, ["a.fits", "b.fits"])
    assert where == f"memory:{name}"
    assert store.ops == [("remove", other), ("write", name), ("remove", PROCESSING)]
    assert store.messages.keys() == {name}
    box.release(DS)
    assert store.messages.keys() == {name}  # the final message stays


def test_a_message_that_names_itself_begins_with_its_name():
    store = Store()
    box = LockBeside(store)
    box.lock(DS)
    box.start(DS)
    assert store.messages[PROCESSING] == f"{PROCESSING}\n"
    box.finish(DS, True, ["data/a.fits"])
    assert store.messages[TRIGGER] == f"{TRIGGER}\ndata/a.fits\n"


def test_a_message_that_does_not_name_itself_holds_its_lines():
    store = Store()
    box = ProcessingIsTheLock(store)
    box.lock(DS)
    box.start(DS)
    assert store.messages[PROCESSING] == "run 1\n"  # as the lock wrote it
    box.finish(DS, False, ["s3://bucket/outputs/x.tar.gz"])
    assert store.messages[ERROR] == "s3://bucket/outputs/x.tar.gz\n"


def test_processing_is_written_by_the_lock_when_it_is_the_lock():
    store = Store()
    box = ProcessingIsTheLock(store)
    box.lock(DS)
    assert PROCESSING in store.messages
    box.start(DS)
    assert store.ops.count(("write", PROCESSING)) == 1


def test_a_lock_beside_writes_nothing_until_start():
    store = Store(**{f"submit-{DS}": "orchestrator\n"})
    box = LockBeside(store)
    box.lock(DS)
    assert store.ops == [("lock", DS)]
    assert store.messages.keys() == {f"submit-{DS}"}


@pytest.mark.parametrize("box_class", BOXES)
def test_a_second_run_is_refused_and_changes_nothing(box_class):
    store = Store(**{f"submit-{DS}": "orchestrator\n"})
    first = box_class(store)
    first.lock(DS)
    first.start(DS)
    before = dict(store.messages)
    second = box_class(store)
    with pytest.raises(Busy):
        second.lock(DS)
    second.release(DS)  # a run refused gives up nothing it does not hold
    assert store.messages == before
    first.finish(DS, True, [])
    first.release(DS)
    third = box_class(store)
    third.lock(DS)  # the lock is free again
    third.release(DS)


def test_release_before_start_removes_processing_when_it_is_the_lock():
    store = Store(**{f"submit-{DS}": "orchestrator\n"})
    box = ProcessingIsTheLock(store)
    box.lock(DS)
    box.release(DS)  # the output check failed: nothing else was written
    assert store.messages.keys() == {f"submit-{DS}"}
    box.lock(DS)  # and the lock is free


def test_release_before_start_unlocks_a_lock_beside():
    store = Store()
    box = LockBeside(store)
    box.lock(DS)
    box.release(DS)
    assert store.ops == [("lock", DS), ("unlock", DS)]
    assert store.messages == {}


def test_release_after_start_leaves_processing_for_the_final_message():
    store = Store()
    box = ProcessingIsTheLock(store)
    box.lock(DS)
    box.start(DS)
    box.release(DS)  # a run that could not write its final message
    assert store.messages.keys() == {PROCESSING}


def test_a_lock_that_cannot_be_removed_is_a_warning(caplog):
    store = Store()
    box = ProcessingIsTheLock(store)
    box.lock(DS)
    box.fail_removing = PROCESSING
    with caplog.at_level(logging.WARNING, logger="caldp.storage.messages"):
        box.release(DS)
    assert f"cannot remove {PROCESSING}" in caplog.text
    assert PROCESSING in store.messages


def test_interrupted_writes_are_removed_before_processing_is_written():
    calls: list[tuple[str, ...]] = []

    class Cleaning(LockBeside):
        def _remove_interrupted_writes(self, names: tuple[str, ...]) -> None:
            calls.append(names)
            self.store.ops.append(("clean", ""))

    store = Store()
    box = Cleaning(store)
    box.lock(DS)
    box.start(DS)
    assert calls == [(PROCESSING, *replaced_by_processing(DS))]
    assert store.ops.index(("clean", "")) < store.ops.index(("write", PROCESSING))


def test_the_null_box_writes_nothing():
    box = NullMessageBox()
    box.lock(DS)
    box.start(DS)
    assert box.finish(DS, True, ["x"]) == ""
    box.release(DS)
