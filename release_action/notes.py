"""Release notes: the text for a release's body, and how it meets the body the release already has.

The text comes from ``body`` (or ``body_path``) or a changelog's section for
the tag, followed by notes generated from the git history; ``body_mode`` then
decides what an existing release keeps. Everything here runs before the
first request, so a missing section or a shallow clone changes nothing.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .errors import InputError

MODES = ("replace", "keep", "append", "prepend")
#: Around the text that append and prepend add, so that a re-run finds and refreshes it instead of adding it again.
BEGIN, END = "<!-- release-action:begin -->", "<!-- release-action:end -->"
MARKED = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


def compose(body: str | None, changelog: Path | None, generate: bool, tag: str) -> str | None:
    """The new text for the release, or None when the inputs give none."""
    parts = [body] if body is not None else []
    if changelog is not None:
        parts.append(changelog_section(changelog, tag))
    if generate:
        parts.append(generated(tag, Path.cwd()))
    if len(parts) < 2:
        return parts[0] if parts else None  # as given, to the last byte
    return "\n\n".join(part.strip("\n") for part in parts)


def merge(mode: str, text: str | None, existing: str | None) -> str | None:
    """The body the release should have; ``existing`` is None for a release still to be created,
    and a None result leaves the existing body as it is."""
    if text is None or (mode == "keep" and existing is not None):
        return None
    if mode in ("replace", "keep"):
        return text
    block = f"{BEGIN}\n{text}\n{END}"
    if not existing:
        return block
    if MARKED.search(existing):
        return MARKED.sub(lambda _: block, existing, count=1)
    return f"{existing.rstrip()}\n\n{block}" if mode == "append" else f"{block}\n\n{existing.lstrip()}"


# -- a changelog's section -----------------------------------------------------


def changelog_section(path: Path, tag: str) -> str:
    """The text under the heading for ``tag`` (with or without a leading ``v``), up to the next heading
    of the same or a higher level, with the link reference definitions it uses."""
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import normalizeReference

    text = read_text(path, "changelog")
    lines = text.splitlines()
    env: dict = {}
    tokens = MarkdownIt("commonmark").parse(text, env)
    headings = [(int(token.tag[1:]), token.map, _plain(tokens[index + 1]))
                for index, token in enumerate(tokens) if token.type == "heading_open" and token.map]
    found = _heading_for(tag, headings, path)
    level, (_, start), _ = headings[found]
    end = next((where[0] for other, where, _ in headings[found + 1:] if other <= level), len(lines))
    # Up to the last block that belongs to it: link definitions after it are not content.
    end = max((token.map[1] for token in tokens if token.level == 0 and token.map and start <= token.map[0] < end),
              default=start)
    section = "\n".join(lines[start:end]).strip("\n")
    if not section.strip():
        raise InputError(f"Input 'changelog' names {path}, whose section for {tag} is empty.")
    used = {normalizeReference(label) for label in re.findall(r"\[([^\[\]]+)\]", section)}
    definitions = [line for label, ref in env.get("references", {}).items()
                   if label in used and not start <= ref["map"][0] < end for line in lines[slice(*ref["map"])]]
    return "\n".join([section, "", *definitions]).rstrip("\n")


def _heading_for(tag: str, headings: list[tuple[int, list[int], str]], path: Path) -> int:
    versions = [_version(_first_word(title)) for _, _, title in headings]
    if _version(tag) in versions:
        return versions.index(_version(tag))
    found = [_first_word(title) for (_, _, title), version in zip(headings, versions) if version[:1].isdigit()]
    has = f"its version headings are {', '.join(found[:10])}" if found else "it has no version headings"
    raise InputError(f"Input 'changelog' names {path}, which has no section for {tag}; {has}.")


def read_text(path: Path, name: str) -> str:
    """A text file an input names; a byte-order mark some editors write is not part of the text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"Input '{name}' names {path}, which does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
        raise InputError(f"Input '{name}' names {path}, which cannot be read: {reason}.") from None


def _plain(inline) -> str:
    """A heading's text as shown: a linked ``[1.2.0]`` reads ``1.2.0``."""
    return "".join(child.content for child in inline.children or () if child.type in ("text", "code_inline"))


def _first_word(title: str) -> str:
    words = title.split()
    return words[0].strip("[]():,") if words else ""


def _version(word: str) -> str:
    return word[1:] if word[:1] in ("v", "V") and word[1:2].isdigit() else word


# -- notes generated from the git history ---------------------------------------


def generated(tag: str, repository: Path) -> str:
    """The commits between the previous tag and ``tag``, oldest first, grouped by Conventional Commits type."""
    _check_history(tag, repository)
    previous = _previous_tag(tag, repository)
    span = f"refs/tags/{previous}..refs/tags/{tag}" if previous else f"refs/tags/{tag}"
    # Seven hex digits, longer only where ambiguous: not git's default, which grows with the clone's size,
    # so every runner writes the same notes.
    log = _git(repository, "log", "--no-merges", "--reverse", "--abbrev=7", "--format=%h%x1f%s%x1f%b%x1e", span).stdout
    commits = [record.strip("\n").split("\x1f") for record in log.split("\x1e") if record.strip()]
    if not commits:
        return f"No changes since {previous}."
    return _grouped(commits)


#: type(scope)!: description
CONVENTIONAL = re.compile(r"(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?: *(?P<text>.+)")
BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE: ", re.MULTILINE)
GROUPS = {"feat": "Features", "fix": "Fixes"}


def _grouped(commits: list[list[str]]) -> str:
    groups: dict[str, list[str]] = {"Breaking changes": [], "Features": [], "Fixes": [], "Other": []}
    for short, subject, body in commits:
        match = CONVENTIONAL.fullmatch(subject.strip())
        if match is None:
            groups["Other"].append(f"- {subject.strip()} ({short})")
            continue
        scope = f"**{match['scope']}:** " if match["scope"] else ""
        line = f"- {scope}{match['text']} ({short})"
        breaking = match["bang"] or BREAKING_FOOTER.search(body)
        groups["Breaking changes" if breaking else GROUPS.get(match["type"].lower(), "Other")].append(line)
    return "\n\n".join(f"### {title}\n\n" + "\n".join(lines) for title, lines in groups.items() if lines)


def _check_history(tag: str, repository: Path) -> None:
    if shutil.which("git") is None:
        raise InputError("Input 'generate_notes' needs the git program, which is not installed here; use an image"
                         " that has git, or give the notes in 'body' or 'changelog'.")
    shallow = _git(repository, "rev-parse", "--is-shallow-repository")
    if shallow.returncode != 0:
        raise InputError(f"Input 'generate_notes' needs the git repository, and {repository} is not in one;"
                         " check the repository out before this step.")
    if shallow.stdout.strip() == "true":
        raise InputError("Input 'generate_notes' needs the history since the previous tag, but this clone is shallow;"
                         " fetch all of it: `fetch-depth: 0` for actions/checkout on GitHub, the variable"
                         " `GIT_DEPTH: 0` on GitLab, or `git fetch --unshallow --tags`.")
    if _git(repository, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}").returncode != 0:
        raise InputError(f"Input 'generate_notes' needs tag {tag} in the local repository, which does not have it;"
                         " fetch the tags (`fetch-depth: 0` on GitHub, `git fetch --tags` elsewhere).")


def _previous_tag(tag: str, repository: Path) -> str | None:
    """The nearest earlier tag reachable from ``tag``; tags on the same commit do not count."""
    same = _git(repository, "tag", "--points-at", f"refs/tags/{tag}^{{commit}}").stdout.split()
    # --exclude takes patterns; git refuses '*', '?', '[' and '\\' in tag names, so a name matches itself.
    excluded = [f"--exclude={name}" for name in same]
    found = _git(repository, "describe", "--tags", "--abbrev=0", *excluded, f"refs/tags/{tag}")
    if found.returncode != 0:  # no earlier tag: the history starts at the first commit
        return None
    return found.stdout.strip()


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess:
    # safe.directory: in a container the checkout belongs to the runner's user, not to root, and git
    # would refuse to read it; the program only reads the history it was started in.
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repository), *args], capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=120, stdin=subprocess.DEVNULL)
