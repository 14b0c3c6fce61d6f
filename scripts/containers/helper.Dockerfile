# gitlab-ci-local's helper image (it copies the project into job containers).
FROM docker.io/library/debian:12.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends bash rsync git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
