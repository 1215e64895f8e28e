# syntax=docker/dockerfile:1
# photo-relay: one small image for amd64 and arm64 (NAS, Raspberry Pi, laptop).
#   docker build -t photo-relay .
#   docker run -d -p 8000:8000 -v photo-relay-data:/data --ulimit nofile=65536:65536 photo-relay
# (--ulimit: open files; photo-relay also raises its soft limit to the hard one at start,
#  and keeps half of it for connections; docs/RELIABILITY.md.)
# Configure it only with the PHOTO_RELAY_ variables of the README's configuration table.
# Nothing here names an architecture: every dependency ships wheels for both.

ARG PYTHON_IMAGE=python:3.12-slim

# -- build: the project and all its dependencies as wheels --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m pip wheel --wheel-dir /wheels .

# -- run: a virtual environment with only those wheels, as an unprivileged user -----------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/photo-relay/bin:$PATH \
    PHOTO_RELAY_DATA_DIR=/data \
    PHOTO_RELAY_HOST=0.0.0.0 \
    PHOTO_RELAY_PORT=8000
# A fixed uid/gid (10001) so a NAS volume can be given to it: chown -R 10001:10001 <folder>
RUN groupadd --system --gid 10001 photo-relay \
    && useradd --system --uid 10001 --gid photo-relay --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin photo-relay \
    && mkdir /data && chown photo-relay:photo-relay /data && chmod 0750 /data
# The wheels are mounted for this one step, so they never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/photo-relay \
    && /opt/photo-relay/bin/pip install --no-cache-dir --disable-pip-version-check \
       --no-index --find-links=/wheels photo-relay
USER photo-relay
# Not /data, so a stray .env in the volume is never read: configuration comes from variables.
WORKDIR /opt/photo-relay
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PHOTO_RELAY_PORT'], timeout=4)"]
ENTRYPOINT ["photo-relay"]
CMD ["serve"]
