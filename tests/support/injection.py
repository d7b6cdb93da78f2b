"""Faults injected into caldp-process by the name of a pipeline step.

A fault's place (:class:`At`) names a step as ``caldp/pipeline.py`` brackets and
logs it (``step NAME: start``): ``check output``, ``check CRDS cache``,
``fetch``, ``version keywords``, ``bestrefs``, ``stage1``, ``stage2``,
``previews``, ``deliver``, ``messages``.  The action runs

* ``before`` the step begins (outside its bracket: a window between steps),
* at its ``start`` (inside the bracket: the step fails as its own code would),
* ``after`` it ended, or
* at the ``nth`` call, inside the step, of a public function of caldp (``call``:
  a fault in the middle of a step, as the second member of a tarball is written);
  with the step :data:`BETWEEN`, at its ``nth`` call outside every step (the
  windows between steps, as the one between the delivery and the final message).

:meth:`Injector.check` raises when the place was never reached, and installing
an injector raises when its function does not exist or is private: a step or
function renamed can never drop a fault silently.

``python -m tests.support.injection PLACE MARKER SECONDS ARG...`` runs
``caldp-process ARG...`` with a pause of ``SECONDS`` at ``PLACE`` (as
:meth:`At.parse` reads it), announced by writing the file ``MARKER``: a test
sends SIGTERM in that window.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Where = Literal["before", "start", "after", "call"]
WHERE: tuple[Where, ...] = ("before", "start", "after", "call")
BETWEEN = ""  # the step of a function called outside every step


@dataclass(frozen=True)
class At:
    """A place in a run of caldp-process.

    ``nth``: the step's nth run for ``before``/``start``/``after``; the function's nth
    call inside the step (any run of it) for ``call``.
    """

    step: str
    where: Where = "start"
    function: str = ""  # "module:Name.attr", for where="call"
    nth: int = 1

    def __post_init__(self) -> None:
        if self.where not in WHERE:
            raise ValueError(f"{self.where!r}: not one of {WHERE}")
        if (self.where == "call") != bool(self.function):
            raise ValueError(f"{self}: a function goes with where='call' only")
        if self.step == BETWEEN and self.where != "call":
            raise ValueError(f"{self}: only a function call can be placed between steps")
        if self.nth < 1:
            raise ValueError(f"{self}: nth counts from 1")

    def __str__(self) -> str:
        what = f"call {self.function}" if self.function else self.where
        step = f"step {self.step!r}" if self.step != BETWEEN else "no step"
        return f"{what} #{self.nth} in {step}"

    def spec(self) -> str:
        """The place as one command-line argument (:meth:`parse` reads it back)."""
        return f"{self.step}|{self.where}|{self.function}|{self.nth}"

    @classmethod
    def parse(cls, text: str) -> At:
        step, where, function, nth = text.split("|")
        return cls(step, where, function, int(nth))  # type: ignore[arg-type]


def resolve(target: str) -> tuple[object, str]:
    """The owner of ``module:Name.attr`` and the attribute's name; every part must exist
    and be public."""
    module_name, _, path = target.partition(":")
    if not path:
        raise ValueError(f"{target!r}: not module:name")
    owner: object = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in [*module_name.split("."), *parents, name]:
        if part.startswith("_"):
            raise ValueError(f"{target!r}: faults go into public functions only")
    for part in parents:
        owner = getattr(owner, part)
    if not callable(getattr(owner, name)):  # AttributeError when it does not exist
        raise TypeError(f"{target!r} is not a function")
    return owner, name


Patch = Callable[[object, str, Any], None]


class Injector:
    """Runs ``action`` at ``at`` during a run (``every``: at each later call or run too,
    as a fault that stays, else once)."""

    def __init__(self, at: At, action: Callable[[], None], *, every: bool = False) -> None:
        self.at = at
        self.action = action
        self.every = every
        self.runs = 0  # of the step
        self.calls = 0  # of the function, inside the step (or outside every step)
        self.inside = 0  # how deep in the step (a step in itself: never, but exact)
        self.depth = 0  # how deep in any step
        self.reached = 0

    def _due(self, count: int) -> bool:
        return count == self.at.nth or (self.every and count > self.at.nth)

    def _fire(self) -> None:
        self.reached += 1
        self.action()

    def install(self, patch: Patch) -> Injector:
        """Wrap the pipeline's step bracket (and the function) with ``patch``
        (``monkeypatch.setattr``, or ``setattr`` in a process of its own)."""
        from caldp.pipeline import Run

        at, injector = self.at, self
        bracket = Run.step

        @contextmanager
        def step(run: Run, name: str, *args: Any, **kwargs: Any) -> Iterator[None]:
            due = False
            if name == at.step:
                injector.runs += 1
                due = at.where != "call" and injector._due(injector.runs)
            if due and at.where == "before":
                injector._fire()
            with bracket(run, name, *args, **kwargs):
                mine = name == at.step
                injector.inside += mine
                injector.depth += 1
                try:
                    if due and at.where == "start":
                        injector._fire()
                    yield
                finally:
                    injector.inside -= mine
                    injector.depth -= 1
            if due and at.where == "after":
                injector._fire()

        patch(Run, "step", step)
        if at.function:
            owner, name = resolve(at.function)
            original = getattr(owner, name)

            def function(*args: Any, **kwargs: Any) -> Any:
                if injector.inside if at.step != BETWEEN else not injector.depth:
                    injector.calls += 1
                    if injector._due(injector.calls):
                        injector._fire()
                return original(*args, **kwargs)

            patch(owner, name, function)
        return self

    def check(self) -> None:
        """Raise unless the place was reached (the step and function still exist and run)."""
        if not self.reached:
            raise AssertionError(
                f"the fault at {self.at} was never injected: the step ran {self.runs} "
                f"times, the function was called {self.calls} times there "
                "(a step or function renamed, or no longer run there?)"
            )


def main(argv: list[str]) -> int:
    at, marker, seconds, *process_args = argv

    def pause() -> None:
        Path(marker).write_text(f"at {at}")
        time.sleep(float(seconds))

    Injector(At.parse(at), pause).install(setattr)
    from caldp.cli import main as caldp_process

    sys.argv[1:] = process_args
    return caldp_process()  # as the program runs it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
