"""Inside the image (``caldp-test``), the suite tests the installed caldp, not the checkout."""

import os
from pathlib import Path

import pytest

import caldp

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    not os.environ.get("CALDP_TEST_INSTALLED"), reason="not run by caldp-test in the image"
)
def test_the_installed_caldp_is_tested():
    where = Path(caldp.__file__).resolve()
    assert "site-packages" in where.parts and REPO not in where.parents, where
