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
