"""How the sandbox forge reads a multipart/form-data upload: the way the forges' real servers do.

The framing (boundaries, part headers, part data) is python-multipart's
streaming parser, fed the body in 1 MiB pieces, so memory stays flat whatever
the file's size. What a part is called follows the server each forge very
likely runs (facts measured against the real parsers are in the project's
notes on multipart uploads):

- ``spring``: GitFlic answers in Spring's HAL style, so Spring Boot on Tomcat.
  Tomcat frames the parts and refuses a part whose header section exceeds
  512 bytes; Spring's ``StandardMultipartHttpServletRequest`` then reads the
  file name with ``ContentDisposition.parse``: ``filename*`` (RFC 5987) wins,
  a ``filename`` starting with ``=?`` is RFC 2047 decoded, ``\\"`` and ``\\\\``
  are unescaped. Any failure is a ``MultipartException``: HTTP 500.
- ``go``: SourceCraft's API is grpc-gateway style, so Go ``net/http``:
  ``mime.ParseMediaType`` on Content-Disposition (quoted strings, RFC 2231
  ``filename*`` and continuations), then ``Part.FileName()`` keeps only
  ``filepath.Base`` of the name.

Neither percent-decodes a plain ``filename``: ``a%22b.txt`` is stored as
``a%22b.txt``. Header bytes are read as UTF-8 (Spring Boot forces UTF-8 on
the request; Go keeps the bytes, which are UTF-8 from our client).
"""

from __future__ import annotations

import base64
import codecs
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

try:
    from python_multipart import MultipartParser
    from python_multipart.exceptions import FormParserError
except ImportError as missing:  # only the sandbox needs it; the program never imports this module
    raise ImportError("the sandbox forge needs python-multipart: pip install 'release-action[sandbox]'") from missing
if TYPE_CHECKING:  # python-multipart declares it for type checkers only
    from python_multipart.multipart import MultipartCallbacks

PIECE_BYTES = 1 << 20
#: Tomcat's default ``maxPartHeaderSize``: the most bytes of one part's header section.
TOMCAT_HEADER_BYTES = 512
#: Go's reader has no such limit of its own; the sandbox keeps part headers bounded anyway.
GO_HEADER_BYTES = 16 << 10


class Stream(Protocol):
    """What a body is read from: a request's socket file, or the sandbox's stream that puts bytes
    already read back in front of it."""

    def read(self, size: int, /) -> bytes: ...


class MultipartError(ValueError):
    """The body cannot be read as multipart/form-data; the forge answers ``status``."""

    status = 400

    @property
    def detail(self) -> str:
        return f"malformed multipart body: {self}"


class ServletFailure(MultipartError):
    """Spring's ``MultipartException``: Spring Boot answers HTTP 500 and nothing is stored."""

    status = 500

    @property
    def detail(self) -> str:
        return f"Failed to parse multipart servlet request: {self}"


class Disposition(NamedTuple):
    """A part's form field name and file name; None when the server sees none."""

    name: str | None
    filename: str | None


# -- spring: Tomcat 10.1 frames, Spring 6.2 ContentDisposition.parse names --------------------

# Spring's own patterns, verbatim.
SPRING_BASE64_WORD = re.compile(r"=\?([0-9a-zA-Z-_]+)\?B\?([+/0-9a-zA-Z]+=*)\?=")
SPRING_QUOTED_PRINTABLE_WORD = re.compile(r"=\?([0-9a-zA-Z-_]+)\?Q\?([!->@-~]+)\?=")
RFC5987_ATTR_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&+-.^_`|~")


def spring_disposition(value: str) -> Disposition:
    """What GitFlic's Spring Boot makes of a part's Content-Disposition; ServletFailure where Spring throws."""
    # Tomcat only hands on parts whose disposition starts with form-data (others are skipped).
    if not value.lower().startswith("form-data"):
        return Disposition(None, None)
    name = filename = None
    for part in _spring_tokenize(value)[1:]:
        eq = part.find("=")
        if eq < 0:
            raise ServletFailure("Invalid content disposition format")
        attribute = part[:eq].lower()  # not trimmed: 'filename ="x"' is some other attribute
        if part.startswith('"', eq + 1) and part.endswith('"'):
            if eq + 2 > len(part) - 1:  # a lone quote: Java's substring throws
                raise ServletFailure(f"begin {eq + 2}, end {len(part) - 1}, length {len(part)}")
            text = part[eq + 2 : -1]
        else:
            text = part[eq + 1 :]  # unquoted, or a quote never closed: kept as it is
        if attribute == "name":
            name = text
        elif attribute == "filename*":  # RFC 5987 wins over filename, wherever it stands
            first = text.find("'")
            second = text.find("'", first + 1) if first >= 0 else -1
            if first >= 0 and second >= 0:
                charset = _java_charset(_java_trim(text[:first]))
                if charset not in ("utf-8", "iso8859-1"):
                    raise ServletFailure("Charset must be UTF-8 or ISO-8859-1")
                filename = _spring_rfc5987(text[second + 1 :], charset)
            else:
                filename = _spring_rfc5987(text, "ascii")
        elif attribute == "filename" and filename is None:
            if text.startswith("=?"):
                # RFC 2047: the decoded words alone make the name, so "=?utf-8?Q?hi?=.txt" is "hi".
                words = SPRING_BASE64_WORD.findall(text)
                decode = _java_base64
                if not words:
                    words = SPRING_QUOTED_PRINTABLE_WORD.findall(text)
                    decode = _spring_quoted_printable
                filename = (
                    "".join(decode(word).decode(_java_charset(charset), "replace") for charset, word in words)
                    if words
                    else text
                )
            elif "\\" in text:
                filename = _spring_quoted_pairs(text)
            else:
                filename = text
        elif attribute == "size" and not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ServletFailure(f'For input string: "{text}"')  # Long.parseLong; dates are let go
    return Disposition(name, filename)


def _spring_tokenize(header: str) -> list[str]:
    """Spring's tokenize: the type, then each parameter, split on ';' outside quotes."""
    index = header.find(";")
    kind = _java_trim(header[:index] if index >= 0 else header)
    if not kind:
        raise ServletFailure("Content-Disposition header must not be empty")
    parts = [kind]
    while 0 <= index < len(header):
        end = index + 1
        quoted = escaped = False
        while end < len(header):
            char = header[end]
            if char == ";":
                if not quoted:
                    break
            elif not escaped and char == '"':
                quoted = not quoted
            escaped = not escaped and char == "\\"
            end += 1
        part = _java_trim(header[index + 1 : end])
        if part:
            parts.append(part)
        index = end
    return parts


def _spring_quoted_pairs(text: str) -> str:
    """Spring's decodeQuotedPairs: a backslash before '"' or '\\' goes; before anything else it stays."""
    return re.sub(r"\\(.)", lambda m: m[1] if m[1] in '"\\' else m[0], text, flags=re.DOTALL)


def _spring_rfc5987(text: str, charset: str) -> str:
    """Spring's decodeRfc5987Filename: attr-chars and %XX only, anything else throws."""
    raw = text.encode(charset, "replace")  # Java's getBytes puts '?' for what the charset lacks
    out = bytearray()
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte in RFC5987_ATTR_CHARS:
            out.append(byte)
            index += 1
        elif byte == ord("%") and index < len(raw) - 2:
            pair = raw[index + 1 : index + 3].decode("latin-1")
            if not re.fullmatch(r"[+-]?[0-9a-fA-F]+", pair):  # Integer.parseInt(pair, 16)
                raise ServletFailure("Invalid header field parameter format (as defined in RFC 5987)")
            out.append(int(pair, 16) & 0xFF)
            index += 3
        else:
            raise ServletFailure("Invalid header field parameter format (as defined in RFC 5987)")
    return out.decode(charset, "replace")


def _spring_quoted_printable(text: str) -> bytes:
    """Spring's decodeQuotedPrintableFilename: '_' is a space, '=XX' a byte, a short '=' itself."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "_":
            out += b" "
            index += 1
        elif char == "=" and index < len(text) - 2:
            pair = text[index + 1 : index + 3]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", pair):
                raise ServletFailure(f"Not a valid hex sequence: {text[index:]}")
            out.append(int(pair, 16))
            index += 3
        else:
            out += char.encode("ascii")
            index += 1
    return bytes(out)


def _java_base64(text: str) -> bytes:
    """java.util.Base64's basic decoder: padding optional, but right if present."""
    data = text.rstrip("=")
    if len(text) - len(data) not in {0: {0}, 2: {0, 2}, 3: {0, 1}}.get(len(data) % 4, set()):
        raise ServletFailure("Input byte array has wrong 4-byte ending unit")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _java_charset(name: str) -> str:
    """Charset.forName, as near as Python's codec names come; an unknown charset throws."""
    try:
        codec = codecs.lookup(name)
        b"".decode(codec.name)  # rejects codecs that are not text encodings (base64, rot13...)
    except LookupError:
        raise ServletFailure(f"Unsupported charset: {name}") from None
    return codec.name


def _java_trim(text: str) -> str:
    """String.trim: strips every character up to and including the space, and nothing else."""
    return text.strip("".join(map(chr, range(33))))


# -- go: net/http, mime.ParseMediaType and Part.FileName ----------------------------------

GO_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
#: unicode.IsSpace (Python's isspace also counts \x1c-\x1f).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


class _GoMimeError(ValueError):
    pass


def go_disposition(value: str) -> Disposition:
    """What SourceCraft's Go server makes of a part's Content-Disposition."""
    try:
        kind, params = go_parse_media_type(value)
    except _GoMimeError:  # Part leaves the parameters empty: no name, no file name
        return Disposition(None, None)
    # FormName() is "" unless the disposition is form-data, and readForm skips such parts;
    # a part whose FileName() is "" is a plain value, not a file.
    name = params.get("name") if kind == "form-data" else None
    filename = params.get("filename")
    return Disposition(name or None, _go_base(filename) if filename else None)


def go_parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Go's mime.ParseMediaType: the lower-cased type and the parameters, RFC 2231 stitched."""
    base = value.split(";", 1)[0]
    kind = base.lower().strip(GO_SPACE)
    token, rest = _go_token(kind)  # checkMediaTypeDisposition: a token, or token/token
    if rest and rest.startswith("/"):
        subtype, rest = _go_token(rest[1:])
        rest = rest if subtype else "/"
    if not token or rest:
        raise _GoMimeError("mime: no media type")
    params: dict[str, str] = {}
    continuation: dict[str, dict[str, str]] = {}
    text = value[len(base) :]
    while text:
        text = text.lstrip(GO_SPACE)
        if not text:
            break
        key, param, rest = _go_param(text)
        if not key:
            if rest.strip(GO_SPACE) == ";":  # a trailing semicolon is let go
                break
            raise _GoMimeError("mime: invalid media parameter")
        pmap = continuation.setdefault(key.split("*", 1)[0], {}) if "*" in key else params
        if key in pmap and pmap[key] != param:
            raise _GoMimeError("mime: duplicate parameter name")
        pmap[key] = param
        text = rest
    for key, pieces in continuation.items():
        if key + "*" in pieces:
            decoded = _go_decode_2231(pieces[key + "*"])
            if decoded is not None:
                params[key] = decoded.decode("utf-8", "replace")
            continue
        joined, valid, n = b"", False, 0
        while True:
            if f"{key}*{n}" in pieces:
                joined += pieces[f"{key}*{n}"].encode()
            elif f"{key}*{n}*" in pieces:
                encoded = pieces[f"{key}*{n}*"]
                piece = _go_decode_2231(encoded) if n == 0 else _go_percent_unescape(encoded)
                joined += piece or b""
            else:
                break
            valid, n = True, n + 1
        if valid:
            params[key] = joined.decode("utf-8", "replace")
    return kind, params


def _go_token(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and 0x20 < ord(text[end]) < 0x7F and text[end] not in GO_TSPECIALS:
        end += 1
    return text[:end], text[end:]


def _go_value(text: str) -> tuple[str, str] | None:
    """A token or a quoted-string; None where Go fails."""
    if not text.startswith('"'):
        token, rest = _go_token(text)
        return (token, rest) if token else None
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(out), text[index + 1 :]
        # Since Go 1.8 a backslash only escapes a tspecial; before anything else it is kept
        # (MSIE sends paths like "C:\dev\foo.txt" unescaped).
        if char == "\\" and index + 1 < len(text) and text[index + 1] in GO_TSPECIALS:
            out.append(text[index + 1])
            index += 2
            continue
        if char in "\r\n":
            return None
        out.append(char)
        index += 1
    return None  # no closing quote


def _go_param(text: str) -> tuple[str, str, str]:
    """consumeMediaParam: ("", "", text) where there is no well-formed parameter."""
    rest = text.lstrip(GO_SPACE)
    if not rest.startswith(";"):
        return "", "", text
    key, rest = _go_token(rest[1:].lstrip(GO_SPACE))
    rest = rest.lstrip(GO_SPACE)
    if not key or not rest.startswith("="):
        return "", "", text
    value = _go_value(rest[1:].lstrip(GO_SPACE))
    if value is None:
        return "", "", text
    return key.lower(), value[0], value[1]


def _go_decode_2231(text: str) -> bytes | None:
    parts = text.split("'", 2)
    if len(parts) != 3 or parts[0].lower() not in ("us-ascii", "utf-8"):
        return None
    return _go_percent_unescape(parts[2])


def _go_percent_unescape(text: str) -> bytes | None:
    raw = text.encode()
    if re.search(rb"%(?![0-9a-fA-F]{2})", raw):
        return None  # "mime: bogus characters after %"
    return re.sub(rb"%([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), raw)


def _go_base(path: str) -> str:
    """filepath.Base on Linux: the last element, trailing slashes dropped; '\\' is no separator."""
    path = path.rstrip("/")
    return path[path.rfind("/") + 1 :] if path else "/"


#: The dialects by name: how each reads Content-Disposition, and its header section limit.
DISPOSITIONS: dict[str, Callable[[str], Disposition]] = {"spring": spring_disposition, "go": go_disposition}


def _header_section_too_long(rules: str) -> MultipartError:
    if rules == "spring":
        return ServletFailure(
            f"Header section has more than {TOMCAT_HEADER_BYTES} bytes (maybe it is not properly terminated)"
        )
    return MultipartError(f"a part's header section is longer than {GO_HEADER_BYTES} bytes")


# -- the body ------------------------------------------------------------------------------


class Part:
    """One form field: its name, its file name (for files) and its headers, as ``rules`` read them."""

    def __init__(self, lines: list[tuple[bytes, bytes]], rules: str = "spring"):
        self.headers: dict[str, str] = {}
        for key, value in lines:  # the first of a repeated header counts, in Tomcat and in Go
            self.headers.setdefault(key.decode("latin-1").lower(), value.decode("utf-8", "replace").strip(" \t"))
        disposition = self.headers.get("content-disposition")
        self.name, self.filename = Disposition(None, None) if disposition is None else DISPOSITIONS[rules](disposition)


class _Framing:
    """python-multipart's callbacks: gathers each part's headers, minds their size, streams the data."""

    def __init__(self, rules: str, open_part: Callable[[Part], Callable[[bytes], None]]):
        self.rules = rules
        self.limit = TOMCAT_HEADER_BYTES if rules == "spring" else GO_HEADER_BYTES
        self.open_part = open_part
        self.offset = 0  # where in the body the piece being parsed starts
        self.write: Callable[[bytes], None] | None = None
        self.ended = False
        self.on_part_begin()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.lines: list[tuple[bytes, bytes]] = []
        self.key, self.value = bytearray(), bytearray()
        self.start: int | None = None  # body offset of the part's first header byte
        self.line_end = 0  # body offset of the end of its last header line's text

    def _header_bytes(self, start: int, end: int) -> None:
        if self.start is None:
            self.start = self.offset + start
        if self.offset + end - self.start > self.limit:
            raise _header_section_too_long(self.rules)

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(start, end)
        self.key += data[start:end]
        self.line_end = self.offset + end + 1  # the colon

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(start, end)
        self.value += data[start:end]
        self.line_end = self.offset + end

    def on_header_end(self) -> None:
        self.lines.append((bytes(self.key), bytes(self.value)))
        self.key, self.value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        # Tomcat counts the section with its closing CRLF CRLF.
        size = 2 if self.start is None else self.line_end - self.start + 4
        if size > self.limit:
            raise _header_section_too_long(self.rules)
        self.write = self.open_part(Part(self.lines, self.rules))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self.write is not None, "python-multipart hands a part's data only after its headers"
        self.write(data[start:end])

    def on_part_end(self) -> None:
        self.write = None

    def on_end(self) -> None:
        self.ended = True


def read(
    stream: Stream,
    length: int,
    boundary: str,
    open_part: Callable[[Part], Callable[[bytes], None]],
    rules: str = "spring",
) -> None:
    """Read a multipart body of ``length`` bytes, handing each part's data to a writer.

    ``open_part`` receives each part (named by ``rules``: "spring" or "go") and
    returns a function that takes that part's data in pieces. Raises
    MultipartError (ServletFailure where Spring would fail) and whatever
    ``open_part`` or the stream raise.
    """
    framing = _Framing(rules, open_part)
    try:
        # The byte limits above are the ones that count; python-multipart's own are set wider.
        parser = MultipartParser(
            boundary.encode("latin-1"), framing.callbacks(), max_header_count=framing.limit, max_header_size=sys.maxsize
        )
        remaining = length
        while remaining:
            piece = stream.read(min(PIECE_BYTES, remaining))
            if not piece:
                raise MultipartError("the body ended before its Content-Length")
            remaining -= len(piece)
            if not framing.ended:  # whatever follows the closing boundary (an epilogue) is dropped
                parser.write(piece)
            framing.offset += len(piece)
    except (FormParserError, UnicodeEncodeError) as error:
        raise MultipartError(str(error)) from None
    if not framing.ended:
        raise MultipartError("the body ended before the closing boundary")
