"""State messages (docs/interface.rst, State messages): their names and their lifecycle.

A dataset has one state message at a time on an output.  A run

1. :meth:`MessageBox.lock` takes the dataset's lock on the output, before anything
   is written there (:class:`caldp.locks.Busy` if another run holds it);
2. :meth:`MessageBox.start` writes ``processing-<ds>``, then removes the messages
   it replaces (:func:`replaced_by_processing`);
3. :meth:`MessageBox.finish` removes the other final message, writes
   ``processed-<ds>.trigger`` (success) or ``error-<ds>`` (failure), then removes
   ``processing-<ds>``;
4. :meth:`MessageBox.release` gives the lock up (after the final message, or a
   failure).

:class:`MessageBox` holds this lifecycle once.  A backend gives it a few
primitives (write a message whole, remove one, where a message is, take and give
up the lock) and says, with two class attributes, where it differs on purpose:

* :attr:`MessageBox.processing_is_the_lock`: the lock is ``processing-<ds>``
  itself, created only if there is none (S3, which has no lock of its own), rather
  than a lock beside the messages (``file:``: a locked file).  ``processing-<ds>``
  is then written by :meth:`~MessageBox.lock`, not by :meth:`~MessageBox.start`,
  and a run that stops between the two removes it when it releases the lock.
* :attr:`MessageBox.names_itself`: a message's first line is its own name
  (``file:``), before the lines it lists.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar

from caldp.errors import OutputError

log = logging.getLogger("caldp.storage.messages")


def processing_name(dataset: str) -> str:
    return f"processing-{dataset}"


def final_name(dataset: str, ok: bool) -> str:
    """The final message of a run that succeeded (``ok``) or failed."""
    return f"processed-{dataset}.trigger" if ok else f"error-{dataset}"


def replaced_by_processing(dataset: str) -> tuple[str, ...]:
    """The state messages that ``processing-<ds>`` replaces: the orchestrator's
    ``submit-<ds>`` and an earlier run's final message (a dataset has one state
    message at a time; ``placed-`` and the other orchestrator states are left alone)."""
    return (f"submit-{dataset}", final_name(dataset, False), final_name(dataset, True))


class MessageBox(ABC):
    """The state messages of one output: the lifecycle above, on a backend's primitives."""

    processing_is_the_lock: ClassVar[bool] = False
    names_itself: ClassVar[bool] = False

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # dataset -> "locked" | "started"

    # ------------------------------------------------------------------ the lifecycle

    def lock(self, dataset: str) -> None:
        """Take the dataset's lock on this output before anything is written there
        (:class:`caldp.locks.Busy` if another run holds it)."""
        self._acquire(dataset)
        self._held[dataset] = "locked"

    def start(self, dataset: str) -> None:
        """Write ``processing-<ds>`` (unless :meth:`lock` did), then remove the
        messages it replaces (:func:`replaced_by_processing`)."""
        self._held[dataset] = "started"
        replaced = replaced_by_processing(dataset)
        self._remove_interrupted_writes((processing_name(dataset), *replaced))
        if not self.processing_is_the_lock:
            self._write(processing_name(dataset), self.text(processing_name(dataset), []))
        for name in replaced:
            self._remove(name)

    def finish(self, dataset: str, ok: bool, lines: list[str]) -> str:
        """Write ``processed-<ds>.trigger`` (``ok``) or ``error-<ds>`` listing ``lines``,
        remove ``processing-<ds>``; where the message is."""
        name = final_name(dataset, ok)
        self._remove(final_name(dataset, not ok))
        self._write(name, self.text(name, lines))
        self._remove(processing_name(dataset))
        return self.where(name)

    def release(self, dataset: str) -> None:
        """Give up the lock.  ``processing-<ds>`` goes with the final message; when it
        is the lock and the run stopped before :meth:`start` (its output check
        failed), it is removed here."""
        state = self._held.pop(dataset, None)
        if state is None:
            return
        if state == "locked" and self.processing_is_the_lock:
            try:
                self._remove(processing_name(dataset))
            except OutputError as exc:
                log.warning("%s", exc)
        self._unlock(dataset)

    def text(self, name: str, lines: list[str]) -> str:
        """A message's text: its lines (after its own name when :attr:`names_itself`)."""
        heading = [name] if self.names_itself else []
        return "".join(f"{line}\n" for line in [*heading, *lines])

    # ------------------------------------------------------------------ primitives

    @abstractmethod
    def where(self, name: str) -> str:
        """Where the message ``name`` is (a path or a URL)."""

    @abstractmethod
    def _write(self, name: str, text: str) -> None:
        """Write the message ``name`` whole (a reader never sees part of it)."""

    @abstractmethod
    def _remove(self, name: str) -> None:
        """Remove the message ``name``, if there is one."""

    @abstractmethod
    def _acquire(self, dataset: str) -> None:
        """Take the dataset's lock (:class:`caldp.locks.Busy` if another run holds it)."""

    def _unlock(self, dataset: str) -> None:  # noqa: B027 - a lock may need no giving up
        """Give up the lock taken by :meth:`_acquire` (``processing-<ds>`` aside)."""

    def _remove_interrupted_writes(self, names: tuple[str, ...]) -> None:  # noqa: B027
        """Remove what a run killed while writing one of ``names`` left behind (nothing,
        where a message is written in one step)."""


class NullMessageBox(MessageBox):
    """No messages (output ``none``): every primitive does nothing."""

    def where(self, name: str) -> str:  # noqa: ARG002
        return ""

    def _write(self, name: str, text: str) -> None:
        pass

    def _remove(self, name: str) -> None:
        pass

    def _acquire(self, dataset: str) -> None:
        pass
