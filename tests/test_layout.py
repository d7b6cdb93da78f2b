"""The tests mirror the package: one test module per module of caldp.

``caldp/a/b.py`` is tested in ``tests/test_a_b.py``, ``caldp/a/__init__.py`` in
``tests/test_a.py``.  Exempt are the modules with no code (nothing but a
docstring) and those in :data:`EXEMPT`, each with its reason.  A test module
that is named after no module is one of :data:`CROSS_CUTTING`, the few that test
what several modules do together; any other fails here, and so does a module
without its test module.  Test doubles, synthetic data and servers are not tests:
they live in ``tests/support/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "caldp"
TESTS = ROOT / "tests"

EXEMPT = {
    "__init__.py": "the package's version string; test_installed checks the installed one",
    "__main__.py": "``python -m caldp`` calls caldp.cli.run_process (tested in test_cli)",
}

CROSS_CUTTING = {
    # caldp as its users run it: the pipeline with each backend, the programs, the image
    "test_pipeline_s3",  # S3 in and out, CRDS references from S3
    "test_pipeline_astroquery",  # inputs from a local MAST server
    "test_calcloud_job",  # CALCLOUD's job command and environment, IAM enforced
    "test_calcloud_metrics",  # the metrics files as CALCLOUD's model ingest reads them
    "test_realprograms",  # the real hstcal programs, where they are on PATH
    "test_install_hints",  # a core-only install: what is missing, and where to get it
    "test_installed",  # inside the image: the installed caldp is the one tested
    "test_image",  # the built image on a Docker engine
    "test_image_batch",  # caldp-batch on moto's Batch running the image
    # promises that hold across every step
    "test_faults",  # the fault matrix: each step under each fault
    "test_hostile_inputs",  # broken and hostile inputs
    "test_rerun",  # the same dataset again, killed runs, two runs at once
    "test_secrets",  # no credential reaches a log, metrics or message
    # the project's other files
    "test_docker",  # the Dockerfile and .dockerignore
    "test_docker_context",  # what the Dockerfile copies is enough to install
    "test_docs",  # the README and docs/ speak of what the project has
    "test_scripts",  # scripts/, the operator's shell tools
    "test_standins",  # tests/support/standins, the calibration-program stand-ins
    "test_synthetic",  # tests/support/synthetic, the made-up inputs
    "test_layout",  # this file
}


def has_code(path: Path) -> bool:
    """Whether ``path`` holds anything but a docstring."""
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return bool(body)


def mirror_name(module: Path) -> str:
    """``caldp/a/b.py`` -> ``test_a_b``; ``caldp/a/__init__.py`` -> ``test_a``."""
    parts = list(module.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "_".join(["test", *parts])


def modules() -> dict[str, Path]:
    """Test module name -> the module it tests, for every module that needs one."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        if relative in EXEMPT or not has_code(path):
            continue
        name = mirror_name(path)
        assert name not in found, f"{relative} and {found[name]} map to one test module {name}"
        found[name] = path
    return found


def existing_tests() -> set[str]:
    return {p.stem for p in TESTS.glob("test_*.py")}


def test_every_module_has_its_test_module():
    missing = sorted(
        f"{path.relative_to(ROOT)} -> tests/{name}.py"
        for name, path in modules().items()
        if name not in existing_tests()
    )
    assert not missing, "modules without their test module: " + ", ".join(missing)


def test_every_test_module_is_named_after_a_module_or_is_cross_cutting():
    stray = sorted(existing_tests() - set(modules()) - CROSS_CUTTING)
    assert not stray, (
        f"test modules named after no module of caldp: {', '.join(stray)}; name a test module "
        "after the module it tests (caldp/a/b.py -> tests/test_a_b.py), or add it to "
        "CROSS_CUTTING with what it tests"
    )


def test_the_lists_name_what_exists_and_do_not_overlap():
    assert not CROSS_CUTTING & set(modules()), "a cross-cutting test named after a module"
    assert CROSS_CUTTING <= existing_tests(), CROSS_CUTTING - existing_tests()
    assert all((PACKAGE / name).is_file() for name in EXEMPT)


def test_the_mapping_rule():
    assert mirror_name(PACKAGE / "storage" / "s3_client.py") == "test_storage_s3_client"
    assert mirror_name(PACKAGE / "previews" / "__init__.py") == "test_previews"
    assert mirror_name(PACKAGE / "cli.py") == "test_cli"
    assert not has_code(PACKAGE / "batch" / "__init__.py")  # a docstring only: exempt
    assert has_code(PACKAGE / "instruments" / "__init__.py")
