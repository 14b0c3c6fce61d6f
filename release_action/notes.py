"""Release notes: the text for a release's body, and how it meets the body the release already has.

The text comes from ``body`` (or ``body_path``) or a changelog's section for
the tag, followed by notes generated from the git history; ``body_mode`` then
decides what an existing release keeps. Everything here runs before the
first request, so a missing section or a shallow clone changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .history import Commit, Repository

MODES = ("replace", "keep", "append", "prepend")
#: Around the text that append and prepend add, each alone on its line, so that a re-run finds and
#: refreshes that block instead of adding it again. The end marker carries a fingerprint of the text
#: between them, so a pair that a person wrote or copied (an example in a code block, say) is never
#: taken for the program's. ``END`` alone is the form earlier versions wrote.
BEGIN, END = "<!-- release-action:begin -->", "<!-- release-action:end -->"
FINGERPRINTED_END = re.compile(r"<!-- release-action:end ([0-9a-f]{16}) -->")
#: In the text append and prepend write, a mention of the markers gets a zero-width space after the
#: colon: it reads the same, and can never be taken for the block's own begin or end.
MARKER_MENTION = re.compile(r"<!-- release-action:(?=begin|end)")
NEUTRAL_MENTION = "<!-- release-action:\u200b"


def compose(
    body: str | None, changelog: Path | None, generate: bool, tag: str, workspace: Path | None = None
) -> str | None:
    """The new text for the release, or None when the inputs give none; ``workspace`` is the checkout the CI
    names, read for generated notes when the working directory is not a checkout itself."""
    parts = [body] if body is not None else []
    if changelog is not None:
        parts.append(changelog_section(changelog, tag))
    if generate:
        from .history import Repository  # git, and subprocess with it, only for a run that generates notes

        parts.append(generated(tag, Repository.trusted(Path.cwd(), workspace)))
    if len(parts) < 2:
        return parts[0] if parts else None  # as given, to the last byte
    return "\n\n".join(part.strip("\n") for part in parts)


def merge(mode: str, text: str | None, existing: str | None) -> str | None:
    """The body the release should have; ``existing`` is None for a release still to be created,
    and a None result leaves the existing body as it is.

    ``replace`` and ``keep`` write ``text`` as it is. ``append`` and ``prepend`` keep every byte of
    ``existing`` outside the program's own block, whatever it contains: the block is replaced where
    it is, or added at the end or the start.
    """
    if text is None or (mode == "keep" and existing is not None):
        return None
    if mode in ("replace", "keep"):
        return text
    block = marked(text)
    if not existing:
        return block
    found = own_block(existing, last=mode == "append")
    if found is not None:
        start, end = found
        return existing[:start] + block + existing[end:]
    if mode == "append":
        gap = "" if existing.endswith(("\n\n", "\r\n\r\n")) else "\n" if existing.endswith("\n") else "\n\n"
        return existing + gap + block
    return block + "\n\n" + existing


def marked(text: str) -> str:
    """``text`` as the program's block: between its markers, mentions of them neutralised."""
    text = MARKER_MENTION.sub(NEUTRAL_MENTION, text)
    return f"{BEGIN}\n{text}\n<!-- release-action:end {_fingerprint(text)} -->"


def own_block(body: str, *, last: bool) -> tuple[int, int] | None:
    """Where the program's block is in ``body``: a line that holds only the begin marker, then the
    nearest line after it that holds only an end marker whose fingerprint is that of the text between.
    Of several (someone copied a whole block), those outside code blocks count first; ``last`` takes
    the last, else the first. Failing that, a block of an earlier version (an end marker without
    fingerprint), where both of its markers stand outside any code block."""
    fingerprinted, legacy, begin, offset = [], [], None, 0
    for number, line in enumerate(body.split("\n")):
        bare = line.strip(" \t\r\ufeff")
        if bare == BEGIN:
            begin = (offset + line.index(BEGIN), offset + len(line) + 1, number)
        elif begin is not None and (FINGERPRINTED_END.fullmatch(bare) or bare == END):
            start, inside, first = begin
            pair = (start, offset + line.index(bare) + len(bare))
            match = FINGERPRINTED_END.fullmatch(bare)
            if match is None:
                legacy.append((pair, first, number))
            elif _fingerprint(body[inside : max(inside, offset - 1)]) == match[1]:
                fingerprinted.append((pair, first, number))
            begin = None
        offset += len(line) + 1
    markers = _top_level_marker_lines(body) if fingerprinted or legacy else set()
    # A whole block quoted in a code block (fingerprint and all) is not the program's, if another is.
    outside_code = [pair for pair, first, number in fingerprinted if {first, number} <= markers]
    found = (
        outside_code
        or [pair for pair, _, _ in fingerprinted]
        or [pair for pair, first, number in legacy if {first, number} <= markers]
    )
    if not found:
        return None
    return found[-1] if last else found[0]


def _fingerprint(text: str) -> str:
    """Of the text as any forge keeps it: line endings and white space at line ends do not count."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).strip("\n").encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _top_level_marker_lines(body: str) -> set[int]:
    """Numbers of the lines that Markdown reads as a marker on its own, not as part of code or other HTML."""
    from markdown_it import MarkdownIt

    # Lines are counted at LF alone, as own_block counts them; Markdown also ends one at a lone CR.
    return {
        token.map[0]
        for token in MarkdownIt("commonmark").parse(re.sub(r"\r(?!\n)", " ", body))
        if token.type == "html_block"
        and token.level == 0
        and token.map
        and token.map[1] - token.map[0] == 1
        and _is_marker(token.content.strip())
    }


def _is_marker(line: str) -> bool:
    return line in (BEGIN, END) or FINGERPRINTED_END.fullmatch(line) is not None


def same_body(one: str, other: str) -> bool:
    """Equal as a forge stores a body: some turn CRLF into LF, or drop white space at the end."""
    return _as_stored(one) == _as_stored(other)


def _as_stored(body: str) -> str:
    return body.replace("\r\n", "\n").replace("\r", "\n").rstrip()


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
    headings = [
        (int(token.tag[1:]), token.map, _plain(tokens[index + 1]))
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]
    found = _heading_for(tag, headings, path)
    level, (_, start), _ = headings[found]
    end = next((where[0] for other, where, _ in headings[found + 1 :] if other <= level), len(lines))
    # Up to the last block that belongs to it: link definitions after it are not content.
    end = max(
        (token.map[1] for token in tokens if token.level == 0 and token.map and start <= token.map[0] < end),
        default=start,
    )
    section = "\n".join(lines[start:end]).strip("\n")
    if not section.strip():
        raise InputError(f"Input 'changelog' names {path}, whose section for {tag} is empty.")
    used = {normalizeReference(label) for label in re.findall(r"\[([^\[\]]+)\]", section)}
    definitions = [
        line
        for label, ref in env.get("references", {}).items()
        if label in used and not start <= ref["map"][0] < end
        for line in lines[slice(*ref["map"])]
    ]
    return "\n".join([section, "", *definitions]).rstrip("\n")


def _heading_for(tag: str, headings: list[tuple[int, list[int], str]], path: Path) -> int:
    versions = [_version(_first_word(title)) for _, _, title in headings]
    if _version(tag) in versions:
        return versions.index(_version(tag))
    found = [
        _first_word(title) for (_, _, title), version in zip(headings, versions, strict=True) if version[:1].isdigit()
    ]
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


def generated(tag: str, repository: Repository) -> str:
    """The commits between the previous tag and ``tag``, oldest first, grouped by Conventional Commits type."""
    repository.check_for(tag)
    previous = repository.previous_tag(tag)
    commits = repository.commits(previous, tag)
    if not commits:
        # Only a span after an earlier tag can be empty: a history's first commit is never a merge.
        assert previous is not None, "a whole history up to a tag has a commit that is not a merge"
        return f"No changes since {as_text(previous)}."
    return _grouped(commits)


#: type(scope)!: description
CONVENTIONAL = re.compile(r"(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?: *(?P<text>.+)")
BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE: ", re.MULTILINE)
GROUPS = {"feat": "Features", "fix": "Fixes"}


def _grouped(commits: list[Commit]) -> str:
    groups: dict[str, list[str]] = {"Breaking changes": [], "Features": [], "Fixes": [], "Other": []}
    for commit in commits:
        subject = _visible(commit.subject).strip()
        match = CONVENTIONAL.fullmatch(subject)
        if match is None:
            groups["Other"].append(f"- {as_text(subject)} ({commit.short})")
            continue
        scope = f"**{as_text(match['scope'])}:** " if match["scope"] else ""
        line = f"- {scope}{as_text(match['text'])} ({commit.short})"
        breaking = match["bang"] or BREAKING_FOOTER.search(commit.body)
        groups["Breaking changes" if breaking else GROUPS.get(match["type"].lower(), "Other")].append(line)
    return "\n\n".join(f"### {title}\n\n" + "\n".join(lines) for title, lines in groups.items() if lines)


#: Format characters that words need: the joiners of emoji sequences and of Persian and Indic script.
JOINERS = {"\u200c", "\u200d"}


def _visible(text: str) -> str:
    """Without control and format characters: a subject may carry bytes that end fields or move a
    terminal's cursor, and bidirectional controls that show the text, its hash included, reordered."""
    return "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cf") or char in JOINERS)


#: Markdown's inline markup (``$`` is math on GitHub), and raw HTML: shown as the characters themselves.
INLINE_MARKUP = re.compile(r"([\\`*_\[\]~|$])")
#: What makes a line's start a heading, a list or a rule (``# x``, ``- x``, ``+ x``, ``1. x``); ``>`` is an entity.
BLOCK_START = re.compile(r"^(#(?=#{0,5}(\s|$))|[-+=]|\d+(?=[.)]))")


def as_text(text: str) -> str:
    """Text that Markdown (CommonMark, GitHub's flavour) shows as itself, not as markup or HTML:
    a commit subject is what someone typed, and the forge renders release notes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = INLINE_MARKUP.sub(r"\\\1", text)
    # An ordered list's number cannot be escaped, the punctuation after it can: "1\\. x".
    return BLOCK_START.sub(lambda match: match[1] + "\\" if match[1][0].isdigit() else "\\" + match[1], text)
