"""Pytest plugin: prints the fault matrix of tests/test_faults.py in the terminal summary,
and under it the faults that are not a (step, fault) pair, each a test marked
``@pytest.mark.fault(fault, promise)``.

The test module declares the layout (rows = steps, columns = fault kinds, and
the pairs that are absent with the reason); each case records the exit code
it expected, the code it got, and whether every promise held.  The summary is
a table with one cell per (step, fault): ``21`` (held), ``21!=1`` or
``21 FAIL`` (broken), ``-`` (absent: no such fault in that step), ``?`` (not
run in this session).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cell:
    expected: int
    got: int | None = None
    held: bool = False
    how: str = ""

    def text(self) -> str:
        if self.got is None:
            return f"{self.expected} FAIL"
        if self.got != self.expected:
            return f"{self.expected}!={self.got}"
        return str(self.expected) if self.held else f"{self.expected} FAIL"


@dataclass
class Matrix:
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    absent: dict[tuple[str, str], str] = field(default_factory=dict)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def layout(self, rows: list[str], columns: list[str]) -> None:
        self.rows, self.columns = list(rows), list(columns)

    def start(self, row: str, column: str, expected: int, how: str = "") -> Cell:
        cell = Cell(expected, how=how)
        self.cells[(row, column)] = cell
        return cell

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def lines(self) -> list[str]:
        width0 = max(len(r) for r in self.rows)
        widths = [max(len(c), 8) for c in self.columns]
        head = " | ".join(
            [" " * width0, *(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        )
        out = [head, "-" * len(head)]
        for row in self.rows:
            texts = []
            for column, w in zip(self.columns, widths, strict=True):
                cell = self.cells.get((row, column))
                if cell is not None:
                    text = cell.text()
                elif (row, column) in self.absent:
                    text = "-"
                else:
                    text = "?"
                texts.append(text.ljust(w))
            out.append(" | ".join([row.ljust(width0), *texts]))
        out.append("")
        out.append("cell: expected exit code (held) | 'E!=G' got G | 'E FAIL' a promise broken")
        out.append("      '-' absent (see ABSENT in tests/test_faults.py) | '?' not run")
        out.extend(self.notes)
        return out


MATRIX = Matrix()


@dataclass
class Fault:
    """A fault outside the matrix (a race, a leftover, a leak) and what caldp promises."""

    fault: str
    promise: str
    outcome: str = "?"  # passed | failed | skipped | ? (not run)


FAULTS: dict[str, Fault] = {}  # test node id -> its fault


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault(fault, promise): a fault outside the step matrix, listed under it"
    )


def pytest_collection_modifyitems(session, config, items):  # noqa: ARG001
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is not None:
            FAULTS[item.nodeid] = Fault(*marker.args)


def pytest_runtest_logreport(report):
    fault = FAULTS.get(report.nodeid)
    if fault is None:
        return
    if report.failed:
        fault.outcome = "failed"
    elif report.skipped and fault.outcome == "?":
        fault.outcome = "skipped"
    elif report.when == "call" and report.passed and fault.outcome == "?":
        fault.outcome = "passed"


def merged(faults: list[Fault]) -> list[Fault]:
    """One line per fault: the cases of a parametrized test are one fault tried several
    ways, failed if any failed."""
    outcomes: dict[tuple[str, str], list[str]] = {}
    for f in faults:
        outcomes.setdefault((f.fault, f.promise), []).append(f.outcome)
    rank = ["failed", "passed", "skipped"]
    return [Fault(*key, min(found, key=rank.index)) for key, found in outcomes.items()]


def fault_lines(faults: list[Fault]) -> list[str]:
    width = max(len(f.fault) for f in faults)
    return [f"{f.outcome:<7} {f.fault.ljust(width)}  {f.promise}" for f in faults]


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if MATRIX.cells:
        terminalreporter.write_sep("=", "fault matrix (step x fault -> exit code)")
        for line in MATRIX.lines():
            terminalreporter.write_line(line)
    ran = [f for f in FAULTS.values() if f.outcome != "?"]
    if ran:
        terminalreporter.write_sep("=", "faults beyond the matrix (outcome, fault, promise)")
        for line in fault_lines(merged(ran)):
            terminalreporter.write_line(line)
