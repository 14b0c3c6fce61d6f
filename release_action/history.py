"""The git history of the checkout the run is about, read with the ``git`` program and trusting nothing else.

On a shared runner the directory a job starts in may not be a checkout at all
(GitLab's ``GIT_STRATEGY: none``, a SourceCraft cube, an artifacts-only job),
and git would walk up and read a ``.git`` that someone else planted above it,
whose config can run programs. So git reads one repository only: the working
directory's own checkout, or the one the CI names. It gets no variable of the
run's environment but ``PATH``, no system or global config, and every setting
that could run a program or change its output is switched off on its command line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .log import excerpt

#: The longest one git command may take: reading the log of a large history takes seconds, not minutes.
GIT_SECONDS = 60.0

#: Settings that make git run a program or change what it prints; a command line beats every config file.
SWITCHED_OFF = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "pager.log=false",
    "log.showSignature=false",
    "gpg.program=false",
    "gpg.ssh.program=false",
    "gpg.x509.program=false",
    "diff.external=",
    "core.sshCommand=false",
    "credential.helper=",
    "log.decorate=false",
    "color.ui=false",
    "i18n.logOutputEncoding=UTF-8",
    # No transport, for a fetch that a "partial clone" config would start to fill in a missing object:
    # a config's protocol.<name>.allow beats protocol.allow, so each is named.
    "protocol.allow=never",
    *(f"protocol.{name}.allow=never" for name in ("ext", "file", "git", "http", "https", "ssh")),
)


@dataclass(frozen=True)
class Commit:
    short: str
    subject: str
    body: str


class Repository:
    """One checkout's history, read through git with the least it needs."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def trusted(cls, cwd: Path, named: Path | None) -> Repository:
        """The working directory's own checkout, else the one the CI names (``named``); InputError otherwise."""
        if shutil.which("git") is None:
            raise InputError(
                "Input 'generate_notes' needs the git program, which is not installed here; use an image"
                " that has git, or give the notes in 'body' or 'changelog'."
            )
        for candidate in (cwd, named):
            if candidate is not None and _has_git(candidate):
                return cls(Path(os.path.realpath(candidate)))._owned()
        above = next((parent for parent in Path(os.path.realpath(cwd)).parents if _has_git(parent)), None)
        if above is not None:
            raise InputError(
                f"Input 'generate_notes' reads only the checkout the run is about, and {cwd} is not one: the git"
                f" repository above it, at {above}, is not named by the CI, so it is not trusted; run from the top"
                " of your checkout, or check the repository out before this step."
            )
        where = f"{cwd}" + (f" nor {named}" if named is not None else "")
        raise InputError(
            f"Input 'generate_notes' needs the git repository, and {where} is not in one;"
            " check the repository out before this step."
        )

    def _owned(self) -> Repository:
        """This checkout, once the git directories git would read are known to be its owner's: a ``.git``
        file or link may point anywhere, and git trusts a directory named to it without asking who owns
        it. Git itself says where they are, so no reading of the pointer here can differ from git's."""
        found = self.git("rev-parse", "--absolute-git-dir", "--git-common-dir")
        if found.returncode != 0:
            raise self._unreadable(found)
        try:
            owner = self.root.stat().st_uid
            strangers = [
                folder for folder in found.stdout.splitlines() if (self.root / folder).resolve().stat().st_uid != owner
            ]
        except (OSError, ValueError) as error:
            raise InputError(
                f"Input 'generate_notes' cannot read the git repository of {self.root}:"
                f" {getattr(error, 'strerror', None) or error}."
            ) from None
        if strangers:
            raise InputError(
                f"Input 'generate_notes' reads only the checkout the run is about, and the .git of"
                f" {self.root} leads to {(self.root / strangers[0]).resolve()}, which another user"
                " owns; it is not trusted."
            )
        return self

    def git(self, *args: str) -> subprocess.CompletedProcess:
        """Run git on this repository alone; a git that does not finish in time is ended, with its children."""
        environment = {
            "PATH": os.environ.get("PATH", os.defpath),
            # This repository and no other: no discovery upwards, no system or global config.
            "GIT_DIR": str(self.root / ".git"),
            "GIT_WORK_TREE": str(self.root),
            "GIT_CEILING_DIRECTORIES": str(self.root.parent),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_NO_LAZY_FETCH": "1",
            "LC_ALL": "C.UTF-8",
        }
        switches = [word for setting in SWITCHED_OFF for word in ("-c", setting)]
        # A checkout owned by the runner's user while this runs as root (a container): trusted by name.
        command = ["git", "--no-pager", "-c", f"safe.directory={self.root}", *switches, *args]
        process = subprocess.Popen(
            command,
            cwd=self.root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=GIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            try:
                process.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # something git started holds the pipes open: stop reading
                assert process.stdout and process.stderr, "both are pipes: Popen was given PIPE for each"
                process.stdout.close()
                process.stderr.close()
                process.wait()
            raise InputError(
                f"Input 'generate_notes' ran `git {args[0]}` in {self.root}, which did not finish within"
                f" {GIT_SECONDS:g} s; check the repository, or give the notes in 'body' or 'changelog'."
            ) from None
        return subprocess.CompletedProcess(
            command, process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )

    def _unreadable(self, done: subprocess.CompletedProcess) -> InputError:
        return InputError(
            f"Input 'generate_notes' needs the git repository, and {self.root} cannot be read as one"
            f" ({_first_line(done.stderr)}); check the repository out before this step."
        )

    # -- what the notes need -----------------------------------------------------

    def check_for(self, tag: str) -> None:
        """InputError unless the whole history up to ``tag`` is here."""
        shallow = self.git("rev-parse", "--is-shallow-repository")
        if shallow.returncode != 0:
            raise self._unreadable(shallow)
        if shallow.stdout.strip() == "true":
            raise InputError(
                "Input 'generate_notes' needs the history since the previous tag, but this clone is shallow;"
                " fetch all of it: `fetch-depth: 0` for actions/checkout on GitHub, the variable"
                " `GIT_DEPTH: 0` on GitLab, or `git fetch --unshallow --tags`."
            )
        if self.git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}").returncode != 0:
            raise InputError(
                f"Input 'generate_notes' needs tag {tag} in the local repository, which does not have it;"
                " fetch the tags (`fetch-depth: 0` on GitHub, `git fetch --tags` elsewhere)."
            )

    def previous_tag(self, tag: str) -> str | None:
        """The nearest earlier tag reachable from ``tag``; tags on the same commit do not count."""
        same = self.git("tag", "--points-at", f"refs/tags/{tag}^{{commit}}").stdout.split()
        # --exclude takes patterns; git refuses '*', '?', '[' and '\\' in tag names, so a name matches itself.
        excluded = [f"--exclude={name}" for name in same]
        found = self.git("describe", "--tags", "--abbrev=0", *excluded, f"refs/tags/{tag}")
        if found.returncode != 0:  # no earlier tag: the history starts at the first commit
            return None
        return found.stdout.strip()

    def commits(self, previous: str | None, tag: str) -> list[Commit]:
        """The commits after ``previous`` up to ``tag``, oldest first, merges left out."""
        span = f"refs/tags/{previous}..refs/tags/{tag}" if previous else f"refs/tags/{tag}"
        # Fields start with NUL, which git never prints from a commit message (it ends a message there).
        # Seven hex digits, longer only where ambiguous: not git's default, which grows with the clone's
        # size, so every runner writes the same notes.
        log = self.git(
            "log",
            "--no-merges",
            "--reverse",
            "--abbrev=7",
            "--no-show-signature",
            "--no-color",
            "--format=%x00%h%x00%s%x00%b",
            span,
            "--",
        )
        if log.returncode != 0:
            raise InputError(
                f"Input 'generate_notes' could not read the history of {tag} in {self.root}: {_first_line(log.stderr)}."
            )
        fields = log.stdout.split("\0")[1:]
        return [Commit(*fields[start : start + 3]) for start in range(0, len(fields) - 2, 3)]


def _has_git(folder: Path) -> bool:
    try:
        return (folder / ".git").exists()
    except OSError as error:  # a name too long, a folder that may not be searched
        raise InputError(
            f"Input 'generate_notes' cannot look for a git repository in {folder}: {error.strerror}."
        ) from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return excerpt(lines[0].removeprefix("fatal: ").rstrip(".")) if lines else "git gave no reason"
