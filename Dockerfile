# caldp on STScI's HST calibration base image, which brings the calibration
# programs: hstcal (calacs.e, calwf3.e, cs0.e), calcos and drizzlepac.
#
#   docker build --build-arg CAL_BASE_IMAGE=stsci/hst-pipeline:<tag> \
#                --build-arg CSYS_VER=<tag> --network=host -t caldp .
#   docker run --rm caldp caldp-process <dataset> <input-uri> <output-uri> <config>
#
# scripts/caldp-image-build does the first with the values of caldp-setup and
# CSYS_VER taken from the base image's tag.  Builds with the legacy builder and
# with BuildKit alike (no "# syntax" line, no BuildKit-only expansions).
ARG CAL_BASE_IMAGE=stsci/hst-pipeline:CALDP_20240813_CAL_final
FROM ${CAL_BASE_IMAGE}

# An ARG given before FROM is only visible after FROM when declared again here.
ARG CAL_BASE_IMAGE
# CSYS_VER is stamped into the primary header of every raw input: the
# calibration software version, the tag of the base image the programs come
# from (the tag alone: the archive's column is short).
ARG CSYS_VER
# The conda environment of the base image that holds the calibration stack
# (STScI's images since 2022: "linux", not activated by default).
ARG CAL_ENV=/opt/conda/envs/linux

LABEL org.opencontainers.image.title="caldp" \
      org.opencontainers.image.description="Calibration data pipeline for Hubble Space Telescope observations" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.base.name="${CAL_BASE_IMAGE}"

ENV CSYS_VER="${CSYS_VER}" \
    PATH="${CAL_ENV}/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt

USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Certificate authorities to trust (an inspecting firewall's): STSCICA.crt at
# the top of the build context, where STScI's deploy drops it, and certs/*.crt.
# (The [t] makes STSCICA.crt optional; certs/ always exists.)
COPY STSCICA.cr[t] certs/ /tmp/caldp-certs/
RUN if [ -z "${CSYS_VER}" ]; then \
        echo "give --build-arg CSYS_VER=<tag of the base image> (scripts/caldp-image-build does)" >&2; \
        exit 1; \
    fi \
 && find /tmp/caldp-certs -name '*.crt' -exec cp {} /usr/local/share/ca-certificates/ \; \
 && update-ca-certificates >/dev/null \
 && rm -rf /tmp/caldp-certs \
 && test -s "${REQUESTS_CA_BUNDLE}"

# The non-root account caldp runs as, "developer" with uid 1000 (the base image
# may already have it), and the mount point of the read-only CRDS cache that
# caldp-config-onsite uses.  The home is writable by any uid (sticky, like
# /tmp), so the image also runs as "docker run --user $(id -u):$(id -g)".
RUN if id -u developer >/dev/null 2>&1; then \
        [ "$(id -u developer)" = 1000 ] || usermod --uid 1000 developer; \
    else \
        useradd --create-home --uid 1000 --shell /bin/bash developer; \
    fi \
 && mkdir -p /home/developer /grp/crds/cache \
 && chown -R developer: /home/developer \
 && chmod 1777 /home/developer \
 && chown developer: /grp/crds/cache

# caldp with the production extras, into the Python that has the base image's
# calcos and drizzlepac, with the packages it adds pinned by constraints.txt
# (the base's own stack stays as it is).  spec-plots is installed without its
# declared dependencies, which drag in its documentation and test tools
# (Sphinx, pytest, numpydoc...): it needs astropy, numpy, matplotlib and future.
COPY pyproject.toml README.rst LICENSE.rst constraints.txt /tmp/caldp-src/
COPY docker/added-constraints.py /tmp/caldp-src/docker/
COPY caldp /tmp/caldp-src/caldp
RUN python /tmp/caldp-src/docker/added-constraints.py /tmp/caldp-src/constraints.txt \
        >/tmp/caldp-src/added-constraints.txt \
 && python -m pip install --no-cache-dir --quiet -c /tmp/caldp-src/added-constraints.txt \
        "/tmp/caldp-src[aws,astroquery]" pillow matplotlib future \
 && python -m pip install --no-cache-dir --quiet --no-deps -c /tmp/caldp-src/added-constraints.txt \
        spec-plots \
 && rm -rf /tmp/caldp-src

# The image is only good with every calibration program on PATH and caldp in
# the Python that imports calcos and drizzlepac.
RUN for program in calacs.e calwf3.e cs0.e calcos runastrodriz runsinglehap runmultihap; do \
        command -v "$program" >/dev/null || { echo "$program is not on PATH ($PATH)" >&2; exit 1; }; \
    done \
 && python -c "import calcos, drizzlepac, caldp, spec_plots.make_hst_spec_previews" \
 && [ "$(head -n 1 "$(command -v caldp-process)")" = "#!$(python -c 'import sys; print(sys.executable)')" ] \
 && caldp-process --version

USER 1000
WORKDIR /home/developer
ENV HOME=/home/developer

CMD ["caldp-process", "--help"]
