# The release action's container. Debian's own Python 3.11, so the image needs
# no second Python; the program and its dependencies are installed into a venv
# in a build stage and copied over without pip, setuptools or any cache.
FROM docker.io/library/debian:12.12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md action.yml /src/
COPY release_action /src/release_action
RUN python3 -m venv /opt/release-action \
 && /opt/release-action/bin/pip install --no-cache-dir /src \
 && /opt/release-action/bin/pip uninstall --yes setuptools pip

FROM docker.io/library/debian:12.12-slim
LABEL org.opencontainers.image.title="release-action" \
      org.opencontainers.image.description="Publish releases with verified build artifacts to GitFlic and SourceCraft" \
      org.opencontainers.image.source="https://github.com/OWNER/release-action" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/release-action /opt/release-action
# Debian byte-compiles its whole standard library on install (about 13 MB). Keep the
# compiled form only of what the program imports: start-up stays quick, the image small,
# and any other module still works (compiled when used).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && find /usr/lib/python3.11 -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/release-action/bin/python -c "import release_action.cli, release_action.inputs, release_action.publish, \
release_action.outputs, release_action.forges.gitflic, release_action.forges.sourcecraft, \
ssl, concurrent.futures.thread"
ENV PATH=/opt/release-action/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# GitHub runs the container as root with the workspace as the working directory;
# elsewhere: docker run -v "$PWD:/work" -w /work. As PID 1 the program handles
# SIGTERM itself (a cancelled job) and says which uploads did not finish. The path is
# absolute because some runners (act in host mode) pass the host's PATH into the container.
ENTRYPOINT ["/opt/release-action/bin/release-action"]
