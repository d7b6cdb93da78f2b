"""The README and the interface reference speak of what the project has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caldp.config import PROFILES
from caldp.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.rst"
REFERENCE = ROOT / "docs" / "interface.rst"


def test_the_reference_lists_every_exit_code():
    rows = re.findall(r"^(\d+)\s+([A-Z0-9_]+)\s+\S", REFERENCE.read_text(), re.MULTILINE)
    assert {(int(n), name) for n, name in rows} == {(c.value, c.name) for c in ExitCode}


def test_the_reference_names_every_profile_and_command():
    text = REFERENCE.read_text()
    for name in PROFILES:
        assert f"``{name}``" in text
    scripts = re.findall(r"^(caldp-[a-z-]+) = ", (ROOT / "pyproject.toml").read_text(), re.M)
    assert scripts
    for script in scripts:
        assert f"``{script}``" in text


def test_documents_cite_only_files_of_the_project():
    for doc in (README, REFERENCE):
        text = doc.read_text()
        assert "CONTRACT" not in text, f"{doc.name} cites a document the project does not have"
        for cited in re.findall(r"``((?:docs|benchmarks)/[\w./-]+)``", text):
            assert (ROOT / cited).exists() or "<" in cited, f"{doc.name}: {cited} does not exist"
    assert "docs/interface.rst" in README.read_text()


def test_reruns_are_not_promised_byte_for_byte():
    text = " ".join(README.read_text().split())
    assert "same products, byte for byte" not in text
    assert "not byte for byte the same" in text


def test_sources_cite_no_document_outside_the_project():
    for folder in ("caldp", "tests", "benchmarks", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in ("", ".py", ".sh", ".json"):
                text = path.read_text(errors="replace")
                assert not re.search(r"CONTRACT sections? \d", text), path


def test_documents_are_valid_restructuredtext():
    docutils = pytest.importorskip("docutils.core")
    for doc in (README, REFERENCE, ROOT / "CHANGES.rst"):
        docutils.publish_doctree(
            doc.read_text(),
            source_path=str(doc),
            settings_overrides={"halt_level": 2, "report_level": 5},
        )
