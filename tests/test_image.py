"""The built caldp image on a real Docker engine: what its users run, as they run it.

These tests need ``CALDP_TEST_IMAGE``, the name of a caldp image built with
``scripts/caldp-image-build`` (``.ci/run`` builds one on the test base image of
``tests/image/`` and sets it); they skip where it is not set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from caldp.sample import DATASET

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
IMAGE = os.environ.get("CALDP_TEST_IMAGE", "")
HSTCAL = ("calacs.e", "calwf3.e", "cs0.e")
# A uid that is in no passwd file, neither the host's nor the image's.
STRANGER = 4321

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not IMAGE, reason="CALDP_TEST_IMAGE is not set (a built caldp image)"),
]


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        ["docker", *args], capture_output=True, text=True, timeout=600, **kwargs
    )


def in_image(*command: str, user: str | None = None) -> subprocess.CompletedProcess:
    options = ["--user", user] if user else []
    return docker("run", "--rm", *options, IMAGE, *command)


def readme_block(starting: str) -> str:
    """The README's literal line that starts with ``starting``."""
    for line in (REPO / "README.rst").read_text().splitlines():
        if line.strip().startswith(starting):
            return line.strip()
    raise AssertionError(f"README has no line starting with {starting!r}")


def quick_start_run() -> str:
    """The quick start's commands after the installation (the image has caldp installed)."""
    steps = readme_block("python3 -m venv .venv").split(" && ")
    kept = [s for s in steps if not s.startswith(("python3 -m venv", ". .venv", "pip install"))]
    assert kept and kept[0].startswith("python -m caldp.sample"), steps
    return " && ".join(kept)


def as_stranger(folder: Path) -> list[str]:
    """Run a host command as STRANGER, who may use the engine's socket."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    os.chown(folder, STRANGER, socket_gid)
    return [setpriv, f"--reuid={STRANGER}", f"--regid={socket_gid}", "--clear-groups"]


def owned_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


@pytest.fixture
def open_tmp():
    """A temporary folder others may reach (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="caldp-image-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_version_lists_the_hstcal_programs():
    result = in_image("caldp-process", "--version", "--programs")
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    for program in HSTCAL:
        m = re.search(rf"^{re.escape(program)} (\S.*) \((/\S+)\)$", result.stdout, re.M)
        assert m, f"{program} missing from:\n{result.stdout}"
        assert re.search(r"\d+\.\d+", m.group(1)), m.group(0)
        assert m.group(2) == f"/opt/conda/envs/linux/bin/{program}"
    for program in ("calcos", "runastrodriz", "runsinglehap", "runmultihap"):
        assert re.search(rf"^{program} \(/\S+\)$", result.stdout, re.M), program
    assert "not installed" not in result.stdout


def test_caldp_lives_in_the_calibration_python():
    script = (
        "import sys, caldp, calcos, drizzlepac; "
        "print(sys.executable, caldp.__file__, calcos.__file__, sep='\\n')"
    )
    result = in_image("python", "-c", script)
    assert result.returncode == 0, result.stderr
    executable, caldp_file, calcos_file = result.stdout.split()
    assert executable.startswith("/opt/conda/envs/linux/bin/python")
    prefix = "/opt/conda/envs/linux/lib/"
    assert caldp_file.startswith(prefix) and calcos_file.startswith(prefix)


def test_no_documentation_or_test_tools_in_the_image():
    result = in_image("python", "-m", "pip", "list", "--format=freeze")
    assert result.returncode == 0, result.stderr
    names = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in result.stdout.split()}
    assert "caldp" in names and "spec-plots" in names and "boto3" in names
    for tool in ("sphinx", "sphinx-astropy", "numpydoc", "pytest", "pytest-astropy", "moto"):
        assert tool not in names, tool


def test_certificate_bundle_and_version_keyword():
    result = in_image("bash", "-c", 'echo "$CSYS_VER"; test -s "$REQUESTS_CA_BUNDLE" && echo ok')
    assert result.returncode == 0, result.stderr
    csys_ver, ok = result.stdout.split()
    base = docker("image", "inspect", "--format", "{{index .Config.Labels "
                  '"org.opencontainers.image.base.name"}}', IMAGE)  # fmt: skip
    assert csys_ver == base.stdout.strip().rsplit(":", 1)[1] and ok == "ok"


def test_readme_quick_start_in_the_image(tmp_path):
    work = owned_folder(tmp_path, "work")
    os.chown(work, 1000, 1000)
    result = docker(
        "run", "--rm", "-v", f"{work}:{work}", "-w", str(work), IMAGE,
        "bash", "-c", quick_start_run(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trigger = work / f"sample/outputs/messages/processed-{DATASET}.trigger"
    assert trigger.is_file()
    products = list((work / f"sample/outputs/data/cos/{DATASET}").iterdir())
    assert products, "no products delivered"
    print(f"quick start in the image: {len(products)} products delivered")


def make_sample(work: Path) -> None:
    """The quick start's sample in ``work``, owned by the owner of ``work``."""
    command = quick_start_run().split(" && ")[0].split()
    assert command[:3] == ["python", "-m", "caldp.sample"], command
    subprocess.run([sys.executable, *command[1:]], cwd=work, check=True)  # noqa: S603
    owner = work.stat()
    for path in [work, *work.rglob("*")]:
        os.chown(path, owner.st_uid, owner.st_gid)


def _readme_docker_run(work: Path, prefix: list[str]) -> subprocess.CompletedProcess:
    line = readme_block("docker run --rm").replace("caldp:latest", IMAGE)
    make_sample(work)
    return subprocess.run(  # noqa: S603
        [*prefix, "bash", "-c", line],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_readme_docker_run_example_as_root(tmp_path):
    work = owned_folder(tmp_path, "work")
    result = _readme_docker_run(work, [])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / f"sample/outputs/messages/processed-{DATASET}.trigger").is_file()


def test_readme_docker_run_example_as_a_uid_in_no_passwd_file(open_tmp):
    work = owned_folder(open_tmp, "work")
    result = _readme_docker_run(work, as_stranger(work))
    assert result.returncode == 0, result.stderr[-3000:]
    trigger = work / f"sample/outputs/messages/processed-{DATASET}.trigger"
    assert trigger.is_file() and trigger.stat().st_uid == STRANGER


def _script_env(work: Path) -> dict[str, str]:
    name, tag = IMAGE.rsplit(":", 1)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "CALDP_IMAGE_REPO": name,
        "CALDP_IMAGE_TAG": tag,
        "CALDP_HOME": str(work / "caldp-home"),
        "CRDS_PATH": str(work / "sample/crds_cache"),
    }


@pytest.mark.parametrize("who", ["root", "stranger"])
def test_run_pipeline_and_caldp_sh(open_tmp, who):
    work = owned_folder(open_tmp, "work")
    prefix = as_stranger(work) if who == "stranger" else []
    uid = STRANGER if who == "stranger" else 0
    env = _script_env(work)
    make_sample(work)
    run = subprocess.run(  # noqa: S603
        [*prefix, str(SCRIPTS / "caldp-docker-run-pipeline"), DATASET,
         "file:sample/inputs", "file:sample/outputs", "caldp-config-local"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    trigger = work / f"sample/outputs/messages/processed-{DATASET}.trigger"
    assert trigger.is_file() and trigger.stat().st_uid == uid
    # the README's example of docker options before "--"
    example = readme_block("caldp-docker-run-container --network=none --").split()
    listed = subprocess.run(  # noqa: S603
        [*prefix, str(SCRIPTS / example[0]), *example[1:]],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and "calacs.e" in listed.stdout, listed.stderr
    shell = subprocess.run(  # noqa: S603
        [*prefix, str(SCRIPTS / "caldp-sh"), "-c",
         'id -u; touch "$HOME/written" && caldp-process --version | head -n 1'],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split()[:2] == [str(uid), "caldp"]
    assert (work / "caldp-home/written").stat().st_uid == uid
