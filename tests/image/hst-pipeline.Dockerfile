# A stand-in for STScI's calibration base image stsci/hst-pipeline, made with
# no container registry (tests/image/build-base builds it):
#   - a debootstrapped Debian imported locally (ROOTFS);
#   - the real hstcal (calacs.e, calwf3.e, cs0.e) built from its source tarball;
#   - calcos and drizzlepac from PyPI;
#   - laid out like STScI's images: the calibration stack lives in a
#     conda-env-like prefix (/opt/conda/envs/linux) that is NOT on PATH, while
#     the "python" on PATH has neither calcos nor drizzlepac.
# The build context holds this file, the hstcal tarball and certs/ (certificate
# authorities the build host trusts, possibly none).
ARG ROOTFS=caldp-test/debian:bookworm
ARG PREFIX=/opt/conda/envs/linux

FROM ${ROOTFS} AS build
ARG PREFIX
ARG CALCOS_VERSION
ARG DRIZZLEPAC_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY certs/ /usr/local/share/ca-certificates/build-host/
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv python3-dev \
        build-essential cmake gfortran pkg-config libcfitsio-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv "$PREFIX" \
 && "$PREFIX/bin/python" -m pip install --no-cache-dir --quiet \
        "calcos==${CALCOS_VERSION}" "drizzlepac==${DRIZZLEPAC_VERSION}"
COPY hstcal.tar.gz /tmp/
RUN mkdir /tmp/hstcal \
 && tar -xzf /tmp/hstcal.tar.gz -C /tmp/hstcal \
 && { { cmake -S /tmp/hstcal/hstcal-src -B /tmp/hstcal/build -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_INSTALL_PREFIX="$PREFIX" \
         && make -C /tmp/hstcal/build -j"$(nproc)" install; } >/tmp/hstcal/build.log 2>&1 \
      || { tail -n 40 /tmp/hstcal/build.log; exit 1; }; } \
 && rm -rf /tmp/hstcal /tmp/hstcal.tar.gz \
 && for program in calacs.e calwf3.e cs0.e; do "$PREFIX/bin/$program" --version; done

FROM ${ROOTFS}
ARG PREFIX
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY certs/ /usr/local/share/ca-certificates/build-host/
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python-is-python3 libcfitsio10 libgfortran5 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --shell /bin/bash developer
COPY --from=build /opt/conda /opt/conda
RUN "$PREFIX/bin/python" -c "import calcos, drizzlepac" \
 && for program in calacs.e calwf3.e cs0.e calcos runastrodriz runsinglehap runmultihap; do \
        test -x "$PREFIX/bin/$program"; \
    done \
 && ! python -c "import calcos" 2>/dev/null
USER 1000
WORKDIR /home/developer
