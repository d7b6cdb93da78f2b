import io
import tarfile
from pathlib import Path

import pytest

from caldp.storage.tarball import TarballError, extract_file, extract_stream


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes = b"data") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_extracts_plain_files(tmp_path):
    tar = make_tar(
        tmp_path / "ok.tar.gz", [file_member("a_raw.fits"), file_member("sub/b_raw.fits")]
    )
    out = extract_file(tar, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in out) == [
        "a_raw.fits",
        "sub/b_raw.fits",
    ]


@pytest.mark.parametrize(
    "member, words",
    [
        (file_member("../evil"), "'..'"),
        (file_member("a/../../evil"), "'..'"),
        (file_member("/etc/evil"), "absolute"),
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (special("hard", tarfile.LNKTYPE, "../x"), "link"),
        (special("dev", tarfile.CHRTYPE), "device"),
        (special("fifo", tarfile.FIFOTYPE), "device or FIFO"),
    ],
)
def test_hostile_members_refused(tmp_path, member, words):
    tar = make_tar(tmp_path / "bad.tar.gz", [file_member("good_raw.fits"), member])
    with pytest.raises(TarballError, match=words) as info:
        extract_file(tar, tmp_path / "out")
    assert info.value.exit_code == 21
    assert not (tmp_path / "evil").exists()
    assert list((tmp_path / "out").rglob("*")) == []  # what was written is removed


def test_truncated_gzip(tmp_path):
    tar = make_tar(tmp_path / "t.tar.gz", [file_member("a_raw.fits", b"x" * 200_000)])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(TarballError, match="truncated|unreadable"):
        extract_file(tar, tmp_path / "out")


def test_not_a_tarball(tmp_path):
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"this is not gzip at all" * 10)
    with pytest.raises(TarballError):
        extract_file(bad, tmp_path / "out")


def test_size_limit_stops_a_bomb(tmp_path):
    # 64 MB of zeros compress to ~64 kB; a 10 MB limit must stop it
    tar = make_tar(tmp_path / "bomb.tar.gz", [file_member("big_raw.fits", b"\0" * (64 * 2**20))])
    assert tar.stat().st_size < 2**20
    with pytest.raises(TarballError, match="limit"):
        extract_file(tar, tmp_path / "out", max_total_bytes=10 * 2**20)


def test_duplicate_member(tmp_path):
    tar = make_tar(tmp_path / "d.tar.gz", [file_member("a_raw.fits"), file_member("./a_raw.fits")])
    with pytest.raises(TarballError, match="twice"):
        extract_file(tar, tmp_path / "out")


def test_streaming_from_a_file_object(tmp_path):
    tar = make_tar(tmp_path / "s.tar.gz", [file_member("a_raw.fits", b"abc")])
    with open(tar, "rb") as f:
        out = extract_stream(f, tmp_path / "out")
    assert out[0].read_bytes() == b"abc"
