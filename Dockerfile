# The release action's container, distroless-style and made of Debian 12's packages only.
# The build stage installs Debian's Python 3.11 and the program into a venv, then assembles
# the final file system: the runtime packages below, the shared libraries their programs load,
# the venv, and nothing else (no apt, dpkg, perl or pip). To put another Debian package in the
# image, name it in both lists below; its libraries follow by themselves. Of git, only the program
# itself is taken (about 4 MB with its one library): generated release notes need its built-in
# commands, not the 44 MB of remote helpers, Perl and curl its package brings.
FROM docker.io/library/debian:12.12-slim AS build
ARG RUNTIME_PACKAGES="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-minimal \
busybox ca-certificates /usr/bin/git"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv busybox ca-certificates git \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md LICENSE action.yml /src/
COPY release_action /src/release_action
# certifi's own CA list is replaced by Debian's, as Debian's python3-certifi does: one list of
# authorities in the image, kept up to date by the ca-certificates package.
# Compiled modules are kept only for what the program imports: start-up stays quick, the image
# small, and any other module still works (compiled when used). Loading the manifest caches its
# parse beside them, so that a run does not import PyYAML.
RUN python3 -m venv /opt/release-action \
 && /opt/release-action/bin/pip install --no-cache-dir /src \
 && /opt/release-action/bin/pip uninstall --yes setuptools pip \
 && certifi=$(/opt/release-action/bin/python -c "import certifi; print(certifi.where())") \
 && ln -sf /etc/ssl/certs/ca-certificates.crt "$certifi" \
 && find /usr/lib/python3.11 /opt/release-action -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/release-action/bin/python -c "import release_action.cli, release_action.inputs, release_action.publish, \
release_action.outputs, release_action.forges.gitflic, release_action.forges.sourcecraft, \
release_action.notes, release_action.checksums, release_action.attestations, release_action.signing, \
release_action.minisign, release_action.provenance, pysequoia, cryptography.hazmat.primitives.asymmetric.ed25519, \
cryptography.exceptions, markdown_it, ssl, concurrent.futures.thread; release_action.manifest.load()"
COPY scripts/containers/runtime-rootfs /usr/local/bin/
RUN runtime-rootfs /rootfs $RUNTIME_PACKAGES

FROM scratch
# The version and source come from the release (the tag and the repository); these defaults
# mark an image built by hand.
ARG VERSION=unreleased
ARG SOURCE=https://github.com/OWNER/release-action
LABEL org.opencontainers.image.title="release-action" \
      org.opencontainers.image.description="Publish a release with its build artifacts to GitFlic, SourceCraft, GitVerse, Gitea or Forgejo, with retries and verification" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /rootfs /
ENV PATH=/opt/release-action/bin:/usr/local/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# GitHub runs the container as root with the workspace as the working directory;
# elsewhere: docker run -v "$PWD:/work" -w /work. As PID 1 the program handles
# SIGTERM itself (a cancelled job) and says which uploads did not finish. The path is
# absolute because some runners (act in host mode) pass the host's PATH into the container.
ENTRYPOINT ["/opt/release-action/bin/release-action"]
