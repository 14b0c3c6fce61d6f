"""The sandbox forge reads uploads as the forges' real servers do.

GitFlic (Spring Boot on Tomcat) and SourceCraft (Go net/http) name an
uploaded file by their own rules; the facts measured against the real parsers
are in the project's notes on multipart uploads. First the rules alone, on raw
Content-Disposition values; then over HTTP, with hand-built bodies.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import requests

from release_action.sandbox import multipart
from release_action.sandbox.gitflic import GitFlicApi
from release_action.sandbox.server import Sandbox
from release_action.sandbox.sourcecraft import SourceCraftApi

TOKEN = "mp-token-5e1f"
REPOSITORY = "acme/tool"
BOUNDARY = "sandbox-b0undary-7c2e"
CYRILLIC_254 = "д" * 125 + ".zip"  # 254 bytes of UTF-8
NFD = "cafe\u0301-re\u0301sume\u0301.txt"


def file_part(name: str, field: str = "files") -> str:
    """A Content-Disposition for part ``field`` whose quoted filename is ``name`` exactly as given."""
    return f'form-data; name="{field}"; filename="{name}"'


#: raw Content-Disposition value -> (what Spring 6.2 names the file, what Go's Part.FileName() does)
#: None: no file name, so no file (Go reads a part whose FileName() is "" as a plain value).
NAMES = [
    # What every server above reads exactly.
    (file_part("tool-linux-amd64.tar.gz"), "tool-linux-amd64.tar.gz", "tool-linux-amd64.tar.gz"),
    (file_part("my file (1).txt"), "my file (1).txt", "my file (1).txt"),
    (file_part("it's.txt"), "it's.txt", "it's.txt"),
    (file_part("a;b.txt"), "a;b.txt", "a;b.txt"),  # ';' inside the quotes
    (file_part("pct%20.txt"), "pct%20.txt", "pct%20.txt"),  # no percent-decoding, anywhere
    (file_part("отчёт-2024.txt"), "отчёт-2024.txt", "отчёт-2024.txt"),
    (file_part(NFD), NFD, NFD),
    (file_part("🚀-release.tar.gz"), "🚀-release.tar.gz", "🚀-release.tar.gz"),
    (file_part(CYRILLIC_254), CYRILLIC_254, CYRILLIC_254),
    ('form-data; name="files"; filename=plain.txt', "plain.txt", "plain.txt"),  # a token, unquoted
    ('form-data; name="files"; FILENAME="upper.txt"', "upper.txt", "upper.txt"),
    # '"' as browsers send it (%22) is stored as %22; as a backslash escape it is read back.
    (file_part("a%22b.txt"), "a%22b.txt", "a%22b.txt"),
    (file_part('a\\"b.txt'), 'a"b.txt', 'a"b.txt'),
    (file_part("a\\\\b.txt"), "a\\b.txt", "a\\b.txt"),
    # A backslash before an ordinary character stays: Spring's decodeQuotedPairs, and Go since 1.8
    # (it keeps MSIE's unescaped "C:\dev\foo.txt"; only a tspecial is unescaped).
    (file_part("a\\b.txt"), "a\\b.txt", "a\\b.txt"),
    (file_part("a\\;b.txt"), "a\\;b.txt", "a;b.txt"),  # ';' is a tspecial: Go unescapes it
    # RFC 2047: Spring decodes the encoded words and keeps only them; Go leaves the name alone...
    (file_part("=?utf-8?Q?hi?=.txt"), "hi", "=?utf-8?Q?hi?=.txt"),
    (
        file_part("=?utf-8?q?hi?=.txt"),
        "=?utf-8?q?hi?=.txt",
        "=?utf-8?q?hi?=.txt",
    ),  # Spring's patterns want a capital Q or B
    (file_part("=?UTF-8?Q?=D0=B0_b?="), "а b", "=?UTF-8?Q?=D0=B0_b?="),
    # ... but for its path: Go keeps filepath.Base of any name.
    (file_part("=?UTF-8?B?0L/RgNC40LLQtdGC?=.txt"), "привет", "RgNC40LLQtdGC?=.txt"),
    (file_part("dir/sub/a.txt"), "dir/sub/a.txt", "a.txt"),
    # RFC 5987 / 2231 filename* wins over filename, in both.
    ("form-data; name=\"files\"; filename*=UTF-8''%D0%B0.txt", "а.txt", "а.txt"),
    ('form-data; name="files"; filename="x.txt"; filename*=UTF-8\'\'%D0%B0%20b.txt', "а b.txt", "а b.txt"),
    # Spring also takes ISO-8859-1; Go only UTF-8 and US-ASCII, and otherwise drops filename*.
    ("form-data; name=\"files\"; filename*=ISO-8859-1''caf%E9.txt", "café.txt", None),
    # RFC 2231 continuations: Go stitches them; Spring knows no such attribute.
    ('form-data; name="files"; filename*0="a"; filename*1="b.txt"', None, "ab.txt"),
    # Empty and broken names.
    (file_part(""), "", None),
    ('form-data; name="files"; filename="unterminated', '"unterminated', None),
    ('form-data; name="files"', None, None),
]


@pytest.mark.parametrize("disposition, spring, go", NAMES)
def test_file_names_are_read_as_spring_and_go_read_them(disposition, spring, go):
    assert multipart.spring_disposition(disposition).filename == spring
    assert multipart.go_disposition(disposition).filename == go


def test_the_long_cyrillic_name_is_the_one_measured():
    assert len(CYRILLIC_254.encode()) == 254


@pytest.mark.parametrize(
    "disposition",
    [
        "form-data; name=\"files\"; filename*=UTF-8''a b.txt",  # a space is no RFC 5987 attr-char
        "form-data; name=\"files\"; filename*=UTF-8''%D0%B",  # a short escape
        "form-data; name=\"files\"; filename*=KOI8-R''%C1.txt",  # only UTF-8 and ISO-8859-1
        file_part("=?no-such-charset?Q?hi?="),
        file_part("=?utf-8?B?aGk==?="),  # wrong base64 padding
        'form-data; name="files"; flag',  # a parameter without '='
    ],
)
def test_what_spring_cannot_parse_fails_the_whole_request(disposition):
    with pytest.raises(multipart.ServletFailure) as failure:
        multipart.spring_disposition(disposition)
    assert failure.value.status == 500
    assert failure.value.detail.startswith("Failed to parse multipart servlet request: ")


def test_field_names_and_dispositions():
    assert multipart.spring_disposition('form-data; name="files"; filename="a"').name == "files"
    assert multipart.go_disposition('form-data; name="name"').name == "name"
    assert multipart.go_disposition('form-data; name="name"') == ("name", None)
    # Only form-data parts are form fields (Tomcat skips others; Go's FormName() is "").
    assert multipart.spring_disposition('attachment; name="files"; filename="a"') == (None, None)
    assert multipart.go_disposition('attachment; name="files"; filename="a"').name is None


def test_each_forge_reads_by_its_own_servers_rules():
    assert GitFlicApi.multipart_rules == "spring"
    assert SourceCraftApi.multipart_rules == "go"


def test_the_program_itself_does_not_need_python_multipart():
    code = (
        "import sys, release_action.cli, release_action.transport, release_action.forges.gitflic, "
        "release_action.forges.sourcecraft; sys.exit('python_multipart' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# -- over HTTP --------------------------------------------------------------------------------


def body(*parts: tuple[str, bytes], boundary: str = BOUNDARY, content_type: bool = True) -> bytes:
    """A multipart body of (Content-Disposition value, content) parts, byte for byte as given."""
    out = bytearray()
    for disposition, content in parts:
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    return bytes(out + f"--{boundary}--\r\n".encode())


def post(url: str, data: bytes, auth: str, boundary: str = BOUNDARY) -> requests.Response:
    headers = {"Authorization": auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return requests.post(url, data=data, headers=headers, timeout=60)


@pytest.fixture
def sandbox():
    with Sandbox() as forge:
        forge.add_project(REPOSITORY, ["v1.0.0"], TOKEN)
        yield forge


@pytest.fixture
def gitflic(sandbox):
    """POST a body to the upload route of a new GitFlic release: the answer."""
    answer = requests.post(
        f"{sandbox.url}/rest-api/project/{REPOSITORY}/release",
        json={"tagName": "v1.0.0"},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    url = f"{sandbox.url}/rest-api/project/{REPOSITORY}/release/{answer.json()['id']}/file"
    return lambda data: post(url, data, f"token {TOKEN}")


@pytest.fixture
def sourcecraft(sandbox):
    """POST a body to the attachments route of a new SourceCraft draft release: the answer."""
    answer = requests.post(
        f"{sandbox.url}/repos/{REPOSITORY}/releases",
        json={"tag": "v1.0.0", "publish": False},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text  # 200 in the description, 201 in the pages
    url = f"{sandbox.url}/repos/{REPOSITORY}/releases/tag/v1.0.0/attachments"
    return lambda data: post(url, data, f"Bearer {TOKEN}")


def stored(sandbox) -> list[tuple[str, bytes]]:
    (release,) = sandbox.releases(REPOSITORY)
    return [(f.name, f.path.read_bytes()) for f in release.files]


SPRING_OVER_HTTP = [(d, spring) for d, spring, _ in NAMES if spring and "\\" not in spring]


@pytest.mark.parametrize("disposition, name", SPRING_OVER_HTTP)
def test_gitflic_stores_the_name_spring_would(sandbox, gitflic, disposition, name):
    answer = gitflic(body((disposition, b"payload")))

    assert answer.status_code == 200, answer.text
    assert stored(sandbox) == [(name, b"payload")]
    assert [f["name"] for f in answer.json()["attachmentFiles"]] == [name]


def test_gitflic_stores_several_files_of_one_request(sandbox, gitflic):
    answer = gitflic(
        body((file_part("a%22b.txt"), b"one"), (file_part('a\\"b.txt'), b"two"), (file_part("pct%20.txt"), b""))
    )

    assert answer.status_code == 200, answer.text
    assert stored(sandbox) == [("a%22b.txt", b"one"), ('a"b.txt', b"two"), ("pct%20.txt", b"")]


def header_section(name: str) -> bytes:
    return f"Content-Disposition: {file_part(name)}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()


def test_gitflic_takes_part_headers_of_512_bytes_and_refuses_513_as_tomcat_does(sandbox, gitflic, tmp_path):
    fits = "x" * (512 - len(header_section("")))
    assert len(header_section(fits)) == 512

    assert gitflic(body((file_part(fits), b"fits"))).status_code == 200
    answer = gitflic(body((file_part(fits), b"fits"), (file_part("y" + fits), b"too long")))

    assert answer.status_code == 500
    assert answer.json()["detail"] == (
        "Failed to parse multipart servlet request: Header section has more than "
        "512 bytes (maybe it is not properly terminated)"
    )
    assert stored(sandbox) == [(fits, b"fits")]  # only the first request's file; the second stored nothing
    assert sorted(p.name for p in sandbox.state.storage.iterdir()) == [sandbox.releases(REPOSITORY)[0].files[0].id]


def test_gitflic_refuses_a_name_full_of_percent_escapes_that_no_longer_fits(sandbox, gitflic):
    """The browsers' encoding: 200 '"' sent as %22 make 600 bytes of name."""
    answer = gitflic(body((file_part("%22" * 200), b"data")))

    assert answer.status_code == 500
    assert "Header section has more than 512 bytes" in answer.json()["detail"]
    assert stored(sandbox) == []


def test_gitflic_answers_what_spring_cannot_parse_with_500_and_stores_nothing(sandbox, gitflic):
    answer = gitflic(body((file_part("ok.txt"), b"fine"), ("form-data; name=\"files\"; filename*=UTF-8''a b", b"x")))

    assert answer.status_code == 500
    assert answer.json()["detail"].startswith("Failed to parse multipart servlet request: ")
    assert stored(sandbox) == []


def test_a_malformed_body_is_refused_with_400(sandbox, gitflic):
    whole = body((file_part("cut.bin"), b"data" * 1000))
    answer = gitflic(whole[: -len(f"--{BOUNDARY}--\r\n")])  # no closing boundary

    assert answer.status_code == 400
    assert "malformed multipart body" in answer.json()["detail"]
    assert stored(sandbox) == []


def test_a_large_file_is_stored_byte_for_byte_with_fake_boundaries_inside(sandbox, gitflic):
    content = bytearray(os.urandom(30 << 20))
    for at, fake in [
        (0, f"--{BOUNDARY}".encode()[:-1]),
        (1 << 20, f"\r\n--{BOUNDARY}"[:-2].encode()),
        ((1 << 20) - 5, f"\r\n--{BOUNDARY}"[:-1].encode()),
        (len(content) - 10, b"\r\n--"),
    ]:
        content[at : at + len(fake)] = fake  # near-boundaries, some across the sandbox's 1 MiB pieces
    content = bytes(content)

    answer = gitflic(body((file_part("big.bin"), content)))

    assert answer.status_code == 200, answer.text
    (release,) = sandbox.releases(REPOSITORY)
    (stored_file,) = release.files
    assert stored_file.size == len(content)
    assert stored_file.digests["sha256"] == hashlib.sha256(content).hexdigest()
    assert stored_file.path.read_bytes() == content


GO_NAMES = [
    "a%22b.txt",
    'a"b.txt',
    "pct%20.txt",
    "=?utf-8?Q?hi?=.txt",
    "отчёт-2024.txt",
    NFD,
    "🚀.tar.gz",
    "it's.txt",
    "a;b.txt",
    CYRILLIC_254,
]


@pytest.mark.parametrize("name", GO_NAMES)
def test_sourcecraft_stores_the_name_part_as_its_raw_utf8(sandbox, sourcecraft, name):
    answer = sourcecraft(
        body(('form-data; name="name"', name.encode()), (file_part("=?utf-8?Q?hi?=.txt", "file"), b"payload"))
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == name
    assert stored(sandbox) == [(name, b"payload")]


def test_sourcecraft_has_no_512_byte_limit_on_part_headers(sandbox, sourcecraft):
    long_name = "z" * 600
    answer = sourcecraft(body(('form-data; name="name"', b"long.bin"), (file_part(long_name, "file"), b"payload")))

    assert answer.status_code == 201, answer.text
    assert stored(sandbox) == [("long.bin", b"payload")]


@pytest.mark.parametrize(
    "disposition",
    [
        file_part("", "file"),  # FileName() is "": Go reads the part as a plain value
        'form-data; name="file"; filename="unterminated',  # ParseMediaType fails: no name, no file name
    ],
)
def test_sourcecraft_sees_no_file_where_go_sees_none(sandbox, sourcecraft, disposition):
    answer = sourcecraft(body(('form-data; name="name"', b"a.txt"), (disposition, b"payload")))

    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_ARGUMENT"
    assert stored(sandbox) == []
