# The release action's container. Debian's own Python 3.11, so the image needs
# no second Python; the program and its dependencies are installed into a venv
# in a build stage and copied over without pip's caches.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md action.yml /src/
COPY release_action /src/release_action
RUN python3 -m venv /opt/release-action \
 && /opt/release-action/bin/pip install --no-cache-dir /src \
 && /opt/release-action/bin/pip uninstall --yes pip

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="release-action" \
      org.opencontainers.image.description="Publish releases with verified build artifacts to GitFlic and SourceCraft" \
      org.opencontainers.image.licenses="MIT"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/release-action /opt/release-action
ENV PATH=/opt/release-action/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["release-action"]
