"""caldp: the calibration data pipeline for Hubble Space Telescope observations."""

__version__ = "0.1.0"
