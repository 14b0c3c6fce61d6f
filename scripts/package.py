"""Build the Python package, wheel and sdist, byte for byte the same from the same commit.

    python scripts/package.py [--no-isolation] OUTDIR

The release workflow builds it twice, in the job that attaches it to the project's release and in
the job that publishes it to PyPI, and the second checks its SHA-256 digests against the first's:
so the index gets exactly the files the release lists in its checksums. Those jobs hold tokens, so
they build with --no-isolation: setuptools is the one installed beside this Python, by hash, from
scripts/package-requirements.txt, not one that build would fetch from the index.

The wheel is reproducible with SOURCE_DATE_EPOCH (the commit's time, unless set); the sdist is
not, as its tar carries the build's own times, owners and modes, so it is written again with
the commit's time, no owner, plain modes and a gzip header without a date.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path


def main(outdir: str, isolation: bool = True) -> None:
    out = Path(outdir)
    epoch = (
        os.environ.get("SOURCE_DATE_EPOCH")
        or subprocess.run(
            ["git", "log", "-1", "--format=%ct"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    env = {**os.environ, "SOURCE_DATE_EPOCH": epoch}
    isolated = [] if isolation else ["--no-isolation"]
    subprocess.run([sys.executable, "-m", "build", *isolated, "--outdir", str(out), "."], check=True, env=env)
    for sdist in out.glob("*.tar.gz"):
        _normalize(sdist, int(epoch))
    for built in sorted(out.iterdir()):
        print(f"{built.name}")


def _normalize(sdist: Path, epoch: int) -> None:
    """The sdist again: members in name order, each with the commit's time and no owner."""
    with tarfile.open(sdist, "r:gz") as source:
        members = sorted(source.getmembers(), key=lambda member: member.name)
        contents = {member.name: source.extractfile(member).read() for member in members if member.isfile()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in members:
            member.mtime, member.uid, member.gid, member.uname, member.gname = epoch, 0, 0, "", ""
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644  # whatever the umask
            member.pax_headers = {}
            target.addfile(member, io.BytesIO(contents[member.name]) if member.isfile() else None)
    with sdist.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
        packed.write(buffer.getvalue())


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument(
        "--no-isolation",
        dest="isolation",
        action="store_false",
        help="build with the setuptools installed beside this Python, not one from the index",
    )
    cli.add_argument("outdir")
    args = cli.parse_args()
    main(args.outdir, args.isolation)
