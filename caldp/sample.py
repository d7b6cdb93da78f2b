"""A small SYNTHETIC sample to try caldp-process on a machine with no network.

``python -m caldp.sample DIR`` writes:

* ``DIR/inputs/lsampl01q.tar.gz``: a synthetic COS target acquisition
  (ACQ/PEAKD, NUV) -- a ``_rawacq`` and an ``_spt`` file made up here, not
  observed by Hubble.  Real ``calcos`` looks at it, finds nothing to
  calibrate (exit 5, "not an ACQ/IMAGE") and writes a trailer: a complete,
  successful caldp run with no reference files needed.
* ``DIR/crds_cache/``: a tiny CRDS cache with a synthetic context
  ``hst_0001.pmap`` (COS only, one reference type) so that CRDS bestrefs runs
  for real, offline.
* ``DIR/products/jsampl01q_flt.fits``: a synthetic calibrated ACS/HRC star
  field, to see an image preview: the acquisition gets none, and the programs
  that calibrate images (hstcal) are not on PyPI.  Its brightest stars
  saturate (DQ 256 and 2048) and one column is flagged bad (DQ 4).

Then::

    CRDS_PATH=DIR/crds_cache caldp-process lsampl01q file:DIR/inputs file:DIR/outputs caldp-config-local
    caldp-previews -o DIR/previews DIR/products/jsampl01q_flt.fits
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
from pathlib import Path

DATASET = "lsampl01q"
IMAGE = "jsampl01q_flt.fits"
FULL_WELL = 80_000.0  # where the synthetic detector saturates, in counts
CONTEXT = "hst_0001.pmap"
SYNTHETIC = "SYNTHETIC sample made by caldp.sample; not Hubble data"

PMAP = """header = {
    'derived_from' : 'synthetic sample context made by caldp.sample',
    'mapping' : 'PIPELINE',
    'name' : 'hst_0001.pmap',
    'observatory' : 'HST',
    'parkey' : ('INSTRUME',),
    'sha1sum' : '@SHA1@',
}

selector = {
    'COS' : 'hst_cos_0001.imap',
}
"""

IMAP = """header = {
    'derived_from' : 'synthetic sample context made by caldp.sample',
    'instrument' : 'COS',
    'mapping' : 'INSTRUMENT',
    'name' : 'hst_cos_0001.imap',
    'observatory' : 'HST',
    'parkey' : ('REFTYPE',),
    'sha1sum' : '@SHA1@',
}

selector = {
    'deadtab' : 'hst_cos_deadtab_0001.rmap',
}
"""

RMAP = """header = {
    'derived_from' : 'synthetic sample context made by caldp.sample',
    'filekind' : 'DEADTAB',
    'instrument' : 'COS',
    'mapping' : 'REFERENCE',
    'name' : 'hst_cos_deadtab_0001.rmap',
    'observatory' : 'HST',
    'parkey' : (('DETECTOR',), ('DATE-OBS', 'TIME-OBS')),
    'reffile_format' : 'TABLE',
    'reffile_required' : 'NONE',
    'reffile_switch' : 'DEADCORR',
    'rmap_relevance' : '(DEADCORR != "OMIT")',
    'sha1sum' : '@SHA1@',
}

selector = Match({
    ('FUV',) : UseAfter({
        '1996-10-01 00:00:00' : 'synsam01l_dead.fits',
    }),
    ('NUV',) : UseAfter({
        '1996-10-01 00:00:00' : 'synsam02l_dead.fits',
    }),
})
"""


def _with_checksum(text: str) -> str:
    """Fill in the mapping's sha1sum the way CRDS computes it (the text without that line)."""
    lines = [line for line in text.splitlines(keepends=True) if "'sha1sum'" not in line]
    digest = hashlib.sha1("".join(lines).encode()).hexdigest()  # noqa: S324 - CRDS's own checksum
    return text.replace("@SHA1@", digest)


def write_dead_table(path: Path, detector: str) -> Path:
    """A synthetic COS dead-time reference table (never used by an acquisition)."""
    import numpy as np
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "COS"
    primary.header["DETECTOR"] = detector
    primary.header["FILETYPE"] = "DEADTIME REFERENCE TABLE"
    primary.header["USEAFTER"] = "Oct 01 1996 00:00:00"
    primary.header["HISTORY"] = SYNTHETIC
    cols = [
        fits.Column(name="SEGMENT", format="4A", array=np.array(["ANY"])),
        fits.Column(name="OBS_RATE", format="1E", array=np.array([0.0], dtype=np.float32)),
        fits.Column(name="LIVETIME", format="1E", array=np.array([1.0], dtype=np.float32)),
    ]
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    return path


def write_crds_cache(root: Path) -> Path:
    mappings = root / "mappings" / "hst"
    config = root / "config" / "hst"
    references = root / "references" / "hst"
    for d in (mappings, config, references):
        d.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("hst_0001.pmap", PMAP),
        ("hst_cos_0001.imap", IMAP),
        ("hst_cos_deadtab_0001.rmap", RMAP),
    ):
        (mappings / name).write_text(_with_checksum(text))
    for name, detector in (("synsam01l_dead.fits", "FUV"), ("synsam02l_dead.fits", "NUV")):
        write_dead_table(references / name, detector)
    (config / "ref_cache_subdir_mode").write_text("flat\n")
    (config / "bad_files.txt").write_text("")
    stamp = "2026-01-01 00:00:00"
    nowhere = {"hst": "file:///nonexistent/"}  # a synthetic cache: nothing to download
    server_config = {
        "observatory": "hst",
        "operational_context": CONTEXT,
        "edit_context": CONTEXT,
        "context_history": [[stamp, CONTEXT, SYNTHETIC]],
        "bad_files_list": [],
        "mappings": ["hst_0001.pmap", "hst_cos_0001.imap", "hst_cos_deadtab_0001.rmap"],
        "download_metadata": {},
        "force_remote_mode": 0,
        "connected": False,
        "status": "cache",
        "server": "https://hst-serverless-mode.stsci.edu",
        "config_url": nowhere,
        "mapping_url": nowhere,
        "reference_url": nowhere,
        "pickle_url": nowhere,
        "crds_version": {"rev": "", "str": "synthetic", "svnurl": "/"},
        "last_refreshed": stamp,
        "last_synced": stamp,
        "updated": stamp,
        "max_bestrefs_per_rpc": 1000,
        "max_headers_per_rpc": 1000,
        "versions_context": "",
    }
    (config / "server_config").write_text(repr(server_config) + "\n")
    return root


def write_acquisition(folder: Path, dataset: str = DATASET) -> list[Path]:
    """A synthetic COS NUV ACQ/PEAKD ``_rawacq`` and ``_spt``."""
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    h = primary.header
    for key, value in (
        ("FILENAME", f"{dataset}_rawacq.fits"),
        ("FILETYPE", "ACQ"),
        ("TELESCOP", "HST"),
        ("INSTRUME", "COS"),
        ("ROOTNAME", dataset),
        ("IMAGETYP", "ACCUM"),
        ("TARGNAME", "SYNTHETIC"),
        ("PROPOSID", 99999),
        ("DETECTOR", "NUV"),
        ("OBSTYPE", "SPECTROSCOPIC"),
        ("OBSMODE", "ACCUM"),
        ("EXPTYPE", "ACQ/PEAKD"),
        ("OPT_ELEM", "G230L"),
        ("CENWAVE", 2950),
        ("APERTURE", "PSA"),
        ("DATE-OBS", "2010-01-01"),
        ("TIME-OBS", "00:00:00"),
        ("EXPSTART", 55197.0),
        ("DEADCORR", "PERFORM"),
        ("DEADTAB", "N/A"),
        ("RANDSEED", -1),
    ):
        h[key] = value
    h["HISTORY"] = SYNTHETIC
    cols = fits.ColDefs(
        [
            fits.Column(name="DWELL_POINT", format="1I", array=np.arange(1, 6, dtype=np.int16)),
            fits.Column(
                name="DISP_OFFSET", format="1E", array=np.linspace(-1, 1, 5, dtype=np.float32)
            ),
            fits.Column(
                name="COUNTS", format="1J", array=np.array([10, 40, 90, 40, 10], dtype=np.int32)
            ),
        ]
    )
    table = fits.BinTableHDU.from_columns(cols, name="ACQ")
    raw = folder / f"{dataset}_rawacq.fits"
    fits.HDUList([primary, table]).writeto(raw, overwrite=True)

    spt_primary = fits.PrimaryHDU()
    spt_primary.header["INSTRUME"] = "COS"
    spt_primary.header["ROOTNAME"] = dataset
    spt_primary.header["FILETYPE"] = "SPT"
    spt_primary.header["HISTORY"] = SYNTHETIC
    spt = folder / f"{dataset}_spt.fits"
    fits.HDUList(
        [spt_primary, fits.ImageHDU(np.zeros((4, 4), dtype=np.int16), name="UDL")]
    ).writeto(spt, overwrite=True)
    return [raw, spt]


def write_star_field(folder: Path, name: str = IMAGE, size: int = 512) -> Path:
    """A synthetic calibrated ACS/HRC exposure: sky, 300 stars of which the brightest
    saturate (clipped at :data:`FULL_WELL`, DQ 256|2048), and a hot column flagged bad."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(2026)
    sci = rng.normal(30.0, 4.0, (size, size)).astype(np.float32)
    half = 12
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    peaks = 10 ** rng.uniform(2.0, 5.7, 300)
    for peak, (y, x) in zip(peaks, rng.integers(half, size - half, (300, 2)), strict=True):
        sigma = 1.6
        star = peak * np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
        sci[y - half : y + half + 1, x - half : x + half + 1] += star.astype(np.float32)
    dq = np.zeros((size, size), dtype=np.int16)
    saturated = sci >= FULL_WELL
    sci[saturated] = FULL_WELL
    dq[saturated] = 256 | 2048  # full well, A-to-D
    column = size * 3 // 5
    sci[:, column] += 5000.0
    dq[:, column] |= 4  # a bad detector column
    primary = fits.PrimaryHDU()
    for key, value in (
        ("FILENAME", name),
        ("TELESCOP", "HST"),
        ("INSTRUME", "ACS"),
        ("DETECTOR", "HRC"),
        ("ROOTNAME", name.split("_")[0]),
        ("TARGNAME", "SYNTHETIC"),
        ("FILTER1", "F555W"),
        ("EXPTIME", 60.0),
    ):
        primary.header[key] = value
    primary.header["HISTORY"] = SYNTHETIC
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fits.HDUList(
        [
            primary,
            fits.ImageHDU(sci, name="SCI", ver=1),
            fits.ImageHDU(np.sqrt(np.abs(sci) + 16.0).astype(np.float32), name="ERR", ver=1),
            fits.ImageHDU(dq, name="DQ", ver=1),
        ]
    ).writeto(path, overwrite=True)
    return path


def make_sample(dest: Path) -> dict[str, Path]:
    """Write the sample under ``dest``; return its parts."""
    dest = dest.resolve()
    staging = dest / "staging"
    files = write_acquisition(staging)
    inputs = dest / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    tarball = inputs / f"{DATASET}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    for f in files:
        f.unlink()
    staging.rmdir()
    cache = write_crds_cache(dest / "crds_cache")
    image = write_star_field(dest / "products")
    return {"inputs": inputs, "tarball": tarball, "crds_cache": cache, "image": image}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caldp.sample",
        description="Write a small SYNTHETIC COS acquisition and CRDS cache to try caldp "
        "offline, and a synthetic star field to try caldp-previews on.",
    )
    parser.add_argument("dest", type=Path, help="folder to write the sample into")
    args = parser.parse_args(argv)
    parts = make_sample(args.dest)
    print(f"synthetic sample written: {parts['tarball']}")
    print(f"CRDS cache: {parts['crds_cache']}")
    print(
        f"run: CRDS_PATH={parts['crds_cache']} caldp-process {DATASET} "
        f"file:{parts['inputs']} file:{args.dest.resolve() / 'outputs'} caldp-config-local"
    )
    print(f"previews: caldp-previews -o {args.dest.resolve() / 'previews'} {parts['image']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
