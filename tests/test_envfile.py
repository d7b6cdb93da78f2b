import pytest

from caldp import envfile


def test_values_and_refusals(tmp_path, caplog):
    f = tmp_path / "x_cal_env.txt"
    f.write_text(
        "# comment\n"
        "ASTROMETRY_COMPUTE_APOSTERIORI=off\n"
        "export QUOTED='a b'\n"
        "not a pair\n"
        "PATH=/evil\n"
        "LD_PRELOAD=/evil.so\n"
        "PYTHONPATH=/evil\n"
        "jref=/elsewhere/\n"
        "1BAD=x\n"
    )
    values = envfile.read(f)
    assert values == {"ASTROMETRY_COMPUTE_APOSTERIORI": "off", "QUOTED": "a b"}
    text = caplog.text
    assert "line 4 is not KEY=VALUE" in text
    for name in ("PATH", "LD_PRELOAD", "PYTHONPATH", "jref"):
        assert f"sets {name}" in text


def test_a_nul_byte_refuses_the_file_naming_the_line(tmp_path):
    f = tmp_path / "x_cal_env.txt"
    f.write_bytes(b"A=1\n# fine\nB=before\0after\nC=3\n")
    with pytest.raises(envfile.EnvFileError, match="x_cal_env.txt line 3 holds a NUL byte"):
        envfile.read(f)


def test_a_value_longer_than_a_program_can_be_given_refuses_the_file(tmp_path):
    f = tmp_path / "x_cal_env.txt"
    f.write_text(f"A=1\nBIG={'x' * 300_000}\n")
    with pytest.raises(envfile.EnvFileError, match="line 2 sets BIG to 300004 bytes"):
        envfile.read(f)


def test_the_longest_variable_a_program_can_be_given_is_kept(tmp_path):
    f = tmp_path / "x_cal_env.txt"
    value = "x" * (envfile.MAX_ENTRY_BYTES - len("BIG="))
    f.write_text(f"BIG={value}\n")
    assert envfile.read(f) == {"BIG": value}
    f.write_text(f"BIG={value}x\n")
    with pytest.raises(envfile.EnvFileError, match="line 1 sets BIG"):
        envfile.read(f)


def test_variables_each_short_enough_adding_up_to_too_much_refuse_the_file(tmp_path):
    f = tmp_path / "x_cal_env.txt"
    f.write_text("".join(f"V{k}={'x' * 100_000}\n" for k in range(11)))
    with pytest.raises(envfile.EnvFileError, match="may hold at most 1048576"):
        envfile.read(f)


def test_a_huge_env_file_is_refused_before_it_is_read(tmp_path):
    f = tmp_path / "x_cal_env.txt"
    with open(f, "wb") as out:
        out.truncate(2**40)  # sparse: a terabyte that takes no disk
    with pytest.raises(envfile.EnvFileError, match="is 1099511627776 bytes"):
        envfile.read(f)
