"""The README's first command: the synthetic sample through real CRDS and real calcos."""

from astropy.io import fits

from caldp import sample
from tests.support.pipeline_helpers import messages, run, tree


def test_sample_runs_end_to_end_offline(tmp_path, monkeypatch):
    parts = sample.make_sample(tmp_path / "sample")
    monkeypatch.setenv("CRDS_PATH", str(parts["crds_cache"]))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    for key in ("CRDS_READONLY_CACHE", "CRDS_SERVER_URL", "CRDS_CONTEXT", "CALDP_SIMULATE_ERROR"):
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "sample" / "outputs"
    assert run(sample.DATASET, parts["inputs"], out) == 0
    assert messages(out) == [f"processed-{sample.DATASET}.trigger"]
    base = out / "data" / "cos" / sample.DATASET
    assert {"lsampl01q.tra", "lsampl01q_rawacq.fits", "lsampl01q_spt.fits"} <= set(tree(base))
    header = fits.getheader(base / "lsampl01q_rawacq.fits")
    assert (
        header["DEADTAB"] == "lref$synsam02l_dead.fits"
    )  # assigned by CRDS from the sample context
    assert header["CRDS_CTX"] == sample.CONTEXT
    assert any("SYNTHETIC" in str(h) for h in header["HISTORY"])


def test_sample_star_field_preview(tmp_path):
    """The README's second command: a preview of the sample's synthetic star field, its
    saturated stars white and its bad column neutral."""
    import numpy as np
    from PIL import Image

    from caldp.previews import cli

    parts = sample.make_sample(tmp_path / "sample")
    out = tmp_path / "sample" / "previews"
    assert cli.main(["-o", str(out), str(parts["image"])]) == 0
    shown = np.asarray(Image.open(out / "jsampl01q_flt.jpg")).astype(int)[::-1]  # FITS rows
    dq = fits.getdata(parts["image"], "DQ")
    saturated = (dq & 2048) != 0
    bad = dq == 4
    assert saturated.sum() > 50 and bad.sum() > 400
    assert shown[saturated].mean() > 245  # white (JPEG blurs the edges a little)
    assert np.median(shown[bad]) < 40  # neutral: the display value of the sky
    assert Image.open(out / "jsampl01q_flt_thumb.jpg").size == (128, 128)
