# syntax=docker/dockerfile:1.7
# (1.7 for the ${VAR##pattern} expansion below; BuildKit, Docker 23 and later.)
#
# caldp on STScI's HST calibration base image, which brings the calibration
# programs: hstcal (calacs.e, calwf3.e, cs0.e), calcos and drizzlepac.
#
#   docker build --build-arg CAL_BASE_IMAGE=stsci/hst-pipeline:<tag> -t caldp .
#   docker run --rm caldp caldp-process <dataset> <input-uri> <output-uri> <config>
#
# (scripts/caldp-image-build does the first with the values of caldp-setup.)
ARG CAL_BASE_IMAGE=stsci/hst-pipeline:CALDP_20240813_CAL_final
FROM ${CAL_BASE_IMAGE}

# An ARG given before FROM is only visible after FROM when declared again here.
ARG CAL_BASE_IMAGE

LABEL org.opencontainers.image.title="caldp" \
      org.opencontainers.image.description="Calibration data pipeline for Hubble Space Telescope observations" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.base.name="${CAL_BASE_IMAGE}"

# CSYS_VER is stamped into the primary header of every raw input: the
# calibration software version is the tag of the base image the programs come
# from (the tag alone: the archive's column is short).
ENV CSYS_VER="${CAL_BASE_IMAGE##*:}" \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The non-root account caldp runs as, "developer" with uid 1000 (the base image
# may already have it), and the mount point of the read-only CRDS cache that
# caldp-config-onsite uses.
RUN if id -u developer >/dev/null 2>&1; then \
        [ "$(id -u developer)" = 1000 ] || usermod --uid 1000 developer; \
    else \
        useradd --create-home --uid 1000 --shell /bin/bash developer; \
    fi \
 && mkdir -p /home/developer /grp/crds/cache \
 && chown -R developer: /home/developer \
 && chown developer: /grp/crds/cache

# The package with the production extras only (no test or dev tools; the
# calibration programs are the base image's own, so no "cal" extra).
COPY pyproject.toml README.rst LICENSE.rst /tmp/caldp-src/
COPY caldp /tmp/caldp-src/caldp
RUN python -m pip install --no-cache-dir "/tmp/caldp-src[aws,astroquery,previews]" \
 && rm -rf /tmp/caldp-src \
 && caldp-process --help >/dev/null

USER 1000
WORKDIR /home/developer
ENV HOME=/home/developer

CMD ["caldp-process", "--help"]
