import gzip
import io
import tarfile
from pathlib import Path

import pytest

from caldp.exit_codes import ExitCode
from caldp.storage.tarball import DEFAULT_MAX_MEMBERS, TarballError, extract_file, extract_stream
from caldp.sysexit import classify
from tests.support import tarballs

LIMIT = 2**30  # the members' bytes allowed, where a test does not try the limit


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
    out = extract_file(tar, tmp_path / "out", max_total_bytes=LIMIT)
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
        (file_member("sub/../inside"), "'..'"),  # only the '..' check refuses this one
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link to '/etc/passwd'"),
        (special("hard", tarfile.LNKTYPE, "../x"), "is a hard link to '../x'"),
        (special("inside", tarfile.LNKTYPE, "good_raw.fits"), "is a hard link"),
        (special("dev", tarfile.CHRTYPE), "is a character device"),
        (special("blk", tarfile.BLKTYPE), "is a block device"),
        (special("fifo", tarfile.FIFOTYPE), "is a FIFO"),
        (special("volume", b"V"), "of unsupported type 'V'"),
    ],
)
def test_hostile_members_refused(tmp_path, member, words):
    tar = make_tar(tmp_path / "bad.tar.gz", [file_member("good_raw.fits"), member])
    with pytest.raises(TarballError, match=words) as info:
        extract_file(tar, tmp_path / "out", max_total_bytes=LIMIT)
    assert classify(info.value, ExitCode.S3_DOWNLOAD_ERROR) == 21  # the inputs' fault
    assert not (tmp_path / "evil").exists()
    assert list((tmp_path / "out").rglob("*")) == []  # what was written is removed


@pytest.mark.fault(
    "a tarball member with no '..', not a link, escaping through a link already there",
    "exit 21 (the resolved path is outside), nothing written outside",
)
def test_a_member_through_a_link_already_in_the_folder_is_refused(tmp_path):
    """No '..', not absolute, not a link itself: only resolving the path shows that it
    leaves the folder (through a link that was there before the extraction)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "escape").symlink_to(outside)
    tar = make_tar(tmp_path / "t.tar.gz", [file_member("good_raw.fits"), file_member("escape/x")])
    with pytest.raises(TarballError, match="would be written outside the folder"):
        extract_file(tar, dest, max_total_bytes=LIMIT)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["escape"]


def test_size_limit_is_on_the_sum_of_the_members(tmp_path):
    """Three members of 4 MiB, each under a 10 MiB limit, add up to more."""
    members = [file_member(f"m{k}_raw.fits", bytes(4 * 2**20)) for k in range(3)]
    tar = make_tar(tmp_path / "sum.tar.gz", members)
    with pytest.raises(TarballError, match="add up to more than the 10485760 byte limit"):
        extract_file(tar, tmp_path / "out", max_total_bytes=10 * 2**20)
    assert list((tmp_path / "out").rglob("*")) == []
    assert len(extract_file(tar, tmp_path / "out", max_total_bytes=12 * 2**20 + 10240)) == 3


def test_truncated_gzip(tmp_path):
    tar = make_tar(tmp_path / "t.tar.gz", [file_member("a_raw.fits", b"x" * 200_000)])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(TarballError, match="truncated|unreadable"):
        extract_file(tar, tmp_path / "out", max_total_bytes=LIMIT)


def test_not_a_tarball(tmp_path):
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"this is not gzip at all" * 10)
    with pytest.raises(TarballError):
        extract_file(bad, tmp_path / "out", max_total_bytes=LIMIT)


def test_size_limit_stops_a_bomb(tmp_path):
    # 64 MB of zeros compress to ~64 kB; a 10 MB limit must stop it
    tar = make_tar(tmp_path / "bomb.tar.gz", [file_member("big_raw.fits", b"\0" * (64 * 2**20))])
    assert tar.stat().st_size < 2**20
    with pytest.raises(TarballError, match="limit"):
        extract_file(tar, tmp_path / "out", max_total_bytes=10 * 2**20)


def test_duplicate_member(tmp_path):
    tar = make_tar(tmp_path / "d.tar.gz", [file_member("a_raw.fits"), file_member("./a_raw.fits")])
    with pytest.raises(TarballError, match="twice"):
        extract_file(tar, tmp_path / "out", max_total_bytes=LIMIT)


def test_streaming_from_a_file_object(tmp_path):
    tar = make_tar(tmp_path / "s.tar.gz", [file_member("a_raw.fits", b"abc")])
    with open(tar, "rb") as f:
        out = extract_stream(f, tmp_path / "out", max_total_bytes=LIMIT)
    assert out[0].read_bytes() == b"abc"


# ----------------------------------------------------------------------------- corrupt streams

TWO = [("a_raw.fits", b"A" * 5000), ("a_spt.fits", b"B" * 3000)]


@pytest.mark.parametrize(
    "damage, words",
    [
        (tarballs.cut_after_first_member, "end-of-stream marker"),
        (tarballs.flipped_byte, "CRC check failed"),
        (tarballs.no_trailer, "end-of-stream marker"),
        (tarballs.no_end_of_archive, "no end-of-archive block"),
        (tarballs.garbled_second_header, "no end-of-archive block"),
    ],
)
def test_corrupt_stream_is_refused_and_nothing_is_left(tmp_path, damage, words):
    with pytest.raises(TarballError, match=words) as info:
        extract_stream(io.BytesIO(damage(TWO)), tmp_path / "out", max_total_bytes=LIMIT)
    assert classify(info.value, ExitCode.S3_DOWNLOAD_ERROR) == 21  # the inputs' fault
    assert list((tmp_path / "out").rglob("*")) == []


def test_corrupt_builders_damage_only_what_they_say(tmp_path):
    """The undamaged tarball built the same way extracts whole."""
    raw, _ = tarballs.tar_bytes(TWO)
    out = extract_stream(io.BytesIO(gzip.compress(raw)), tmp_path / "out", max_total_bytes=LIMIT)
    assert {p.name: p.read_bytes() for p in out} == dict(TWO)


def test_a_multi_member_gzip_is_one_stream(tmp_path):
    """gzip allows several members back to back (``cat a.gz b.gz``): still one archive."""
    raw, _ = tarballs.tar_bytes(TWO)
    data = gzip.compress(raw[:1024]) + gzip.compress(raw[1024:])
    out = extract_stream(io.BytesIO(data), tmp_path / "out", max_total_bytes=LIMIT)
    assert {p.name: p.read_bytes() for p in out} == dict(TWO)


def test_a_bomb_after_the_end_of_the_archive_is_refused(tmp_path):
    """Zeros after the end-of-archive block are read (to reach the CRC) but count too."""
    raw, _ = tarballs.tar_bytes(TWO)
    data = gzip.compress(raw + bytes(32 * 2**20))
    with pytest.raises(TarballError, match="byte limit"):
        extract_stream(io.BytesIO(data), tmp_path / "out", max_total_bytes=2**20)
    assert list((tmp_path / "out").rglob("*")) == []


# ----------------------------------------------------------------------------- many members


def test_more_members_than_allowed_is_refused(tmp_path):
    path = tarballs.many_members(tmp_path / "many.tar.gz", 11)
    with pytest.raises(TarballError, match="more than 10 members"):
        extract_file(path, tmp_path / "out", max_members=10, max_total_bytes=LIMIT)
    assert list((tmp_path / "out").rglob("*")) == []


@pytest.mark.fault(
    "an input tarball of 100,000 members (the most allowed)",
    "extracted in linear time, within the test time-out",
)
@pytest.mark.slow
def test_the_most_members_allowed_extract_in_linear_time(tmp_path):
    """100,000 members, the most allowed.  Each member is checked against those before
    it in constant time: at a quadratic cost this alone would take about half an hour,
    and the test's time-out ends it (benchmarks/tarball.py prints the figures)."""
    path = tarballs.many_members(tmp_path / "many.tar.gz", DEFAULT_MAX_MEMBERS)
    out = extract_file(path, tmp_path / "out", max_total_bytes=LIMIT)
    assert len(out) == DEFAULT_MAX_MEMBERS
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"m{k:06d}" for k in range(DEFAULT_MAX_MEMBERS)]
    assert {p.read_bytes() for p in out[:: DEFAULT_MAX_MEMBERS // 100]} == {b"x"}
