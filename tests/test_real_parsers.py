"""Real server-side multipart parsers, built here: Go's net/http (what SourceCraft's API very
likely runs, and what Gitea, Forgejo and GitVerse run) and Tomcat 10.1 on a UTF-8 and on a
POSIX-locale JVM (what GitFlic, a Spring Boot application, very likely runs on). Every name the
program accepts reaches each of them byte for byte; every name it refuses is one some real server
would change or refuse; and the sandbox forge reads the names the same way they do. Gitea's
dialect carries the name in the query (``?name=``): Go's ``r.URL.Query().Get("name")`` reads back
every name the program accepts for it, and the sandbox reads a query as Go does.

Marked ``container``: the tools come from scripts/container-tools (the ``tools`` fixture)."""

from __future__ import annotations

import http.client
import io
import select
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from release_action.forges.gitea import name_problem, name_query
from release_action.sandbox.gitea import go_query
from release_action.sandbox.multipart import go_disposition, spring_disposition
from release_action.transport import filename_problem, multipart

pytestmark = pytest.mark.container

HERE = Path(__file__).resolve().parent / "parsers"
ACCEPTED = [
    'a"b.txt',
    'say "hi" %22 100%.txt',
    "pct%20.txt",
    "Привет мир.txt",
    "u\u0308-nfd.bin",
    "😀 emoji.zip",
    "it's; a=b.tar.gz",
    "э" * 125 + ".txt",
    "a,b.txt",
    "x" * 250,
    "tab-free name (1) [2] {3}.deb",
]
REFUSED = ["=?utf-8?Q?hi?=.txt", "=?UTF-8?B?0J/RgNC40LLQtdGC?=.txt", '"' * 205 + ".txt"]


def _start(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start a server that prints its port on its first line; its URL once it does."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 60)
    port = process.stdout.readline().strip() if ready else ""
    if not port.isdigit():
        process.kill()
        pytest.fail(f"{command[0]} did not start")
    return process, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def servers(tools, tmp_path_factory):
    build = tmp_path_factory.mktemp("parsers")
    env = {**tools, "GOCACHE": str(build / "gocache"), "GOPATH": str(build / "gopath"), "GO111MODULE": "off"}
    subprocess.run(
        ["go", "build", "-o", str(build / "echo-go"), str(HERE / "echo.go")], env=env, check=True, timeout=600
    )
    classpath = f"{tools['TOMCAT_JAR']}:{tools['JAKARTA_ANNOTATIONS_JAR']}"
    subprocess.run(
        ["javac", "-nowarn", "-cp", classpath, "-d", str(build), str(HERE / "Echo.java")],
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
    )
    java = ["java", "-cp", f"{classpath}:{build}", "Echo"]
    started = {
        "go": _start([str(build / "echo-go")], env),
        "tomcat-utf8": _start([*java, str(build / "utf8")], {**env, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}),
        "tomcat-posix": _start([*java, str(build / "posix")], {**env, "LC_ALL": "POSIX", "LANG": "POSIX"}),
    }
    yield {name: url for name, (_, url) in started.items()}
    for process, _ in started.values():
        process.kill()
        process.wait(timeout=30)


def read_back(url: str, data, content_type: str) -> tuple[int, dict[str, str]]:
    """What the server read: the file part's name as "file", each text part under its own name."""
    answer = requests.post(url, data=data, headers={"Content-Type": content_type}, timeout=30)
    values = {}
    for line in answer.text.splitlines():
        kind, field, value = (line.split(" ", 2) + ["", ""])[:3]
        if kind in ("file", "field"):
            values["file" if kind == "file" else field] = bytes.fromhex(value).decode("utf-8", "replace")
    return answer.status_code, values


def send(url: str, name: str) -> tuple[int, dict[str, str]]:
    """An upload exactly as the program sends one to SourceCraft: a text part ``name`` and the file."""
    form = multipart([("name", name), ("file", (name, io.BytesIO(b"content"), 7))])
    return read_back(url, form["data"], form["headers"]["Content-Type"])


@pytest.mark.parametrize("server", ["go", "tomcat-utf8", "tomcat-posix"])
@pytest.mark.parametrize("name", ACCEPTED)
def test_every_name_the_program_accepts_reaches_a_real_server_exactly(servers, server, name):
    assert filename_problem(name) is None
    status, values = send(servers[server], name)
    assert status == 200
    assert values == {"file": name, "name": name}


@pytest.mark.parametrize("name", REFUSED)
def test_every_name_the_program_refuses_is_one_a_real_server_would_change(servers, name):
    assert filename_problem(name) is not None
    answers = [send(url, name) for url in servers.values()]
    assert any(status != 200 or values.get("file") != name for status, values in answers), answers


# Content-Disposition values as other clients send them (browsers' %22, raw quotes, RFC 2047, ...).
RAW = [
    'form-data; name="file"; filename="a%22b.txt"',
    'form-data; name="file"; filename="a\\"b.txt"',
    'form-data; name="file"; filename="pct%20.txt"',
    'form-data; name="file"; filename="Привет.txt"',
    'form-data; name="file"; filename="=?utf-8?Q?hi?=.txt"',
    'form-data; name="file"; filename="it\'s; fine.txt"',
    'form-data; name="file"; filename="back\\\\slash.txt"',
]


@pytest.mark.parametrize("raw", RAW)
def test_the_sandbox_reads_names_as_the_real_servers_do(servers, raw):
    boundary = "sandbox-agrees-with-servers"
    body = (
        f"--{boundary}\r\nContent-Disposition: {raw}\r\nContent-Type: application/octet-stream\r\n\r\n"
        f"content\r\n--{boundary}--\r\n"
    ).encode()
    content_type = f"multipart/form-data; boundary={boundary}; charset=utf-8"
    _, go = read_back(servers["go"], body, content_type)
    _, tomcat = read_back(servers["tomcat-utf8"], body, content_type)
    assert go_disposition(raw).filename == go.get("file")
    assert spring_disposition(raw).filename == tomcat.get("file")


# -- Gitea's dialect: the name in the query ------------------------------------------------------

#: Names whose characters mean something in a query: '+' a space, '&' and ';' separators, '#' the end,
#: '%' an escape, '=' a value.
QUERY_NAMES = [
    "a+b c.tar.gz",
    "semi;colon & amp=eq.txt",
    "hash#frag?q.zip",
    "100%25 %zz.bin",
    "Привет+мир.txt",
    "tilde~dot..dash-.deb",
    "+",
    "%",
    "&name=evil.exe",
]


def send_gitea(url: str, name: str) -> tuple[int, dict[str, str], bytes | None]:
    """An upload exactly as the program sends one to Gitea: the name in the query, the file in the
    part ``attachment``; what the server read, and the query's name as raw bytes."""
    form = multipart([("attachment", (name, io.BytesIO(b"content"), 7))])
    answer = requests.post(
        f"{url}?{name_query(name)}",
        data=form["data"],
        headers={"Content-Type": form["headers"]["Content-Type"]},
        timeout=30,
    )
    status, values = answer.status_code, {}
    raw = None
    for line in answer.text.splitlines():
        kind, field, value = (line.split(" ", 2) + ["", ""])[:3]
        if kind == "query":
            raw = bytes.fromhex(value)
        elif kind == "file":
            values[field] = bytes.fromhex(value).decode("utf-8", "replace")
    return status, values, raw


@pytest.mark.parametrize("name", [*ACCEPTED, *QUERY_NAMES])
def test_every_name_the_program_accepts_for_gitea_reaches_go_s_query_reader_exactly(servers, name):
    assert name_problem(name) is None
    status, values, raw = send_gitea(servers["go"], name)

    assert status == 200
    assert raw == name.encode("utf-8"), 'r.URL.Query().Get("name") read another name'
    assert values == {"attachment": name}


# Queries as other clients write them: '+' for a space, raw ';', bad escapes, a repeated key, bytes
# that are not UTF-8.
RAW_QUERIES = [
    "name=a+b",
    "name=a%2Bb",
    "name=a;b",
    "x=1;y=2&name=c",
    "name=%zz",
    "name=ok&name=second",
    "name=%E2%82%AC",
    "name=%FF.bin",
    "name=",
    "name",
    "other=1",
    "name=a%20b&x=%",
]


@pytest.mark.parametrize("raw", RAW_QUERIES)
def test_the_sandbox_reads_a_query_as_go_does(servers, raw):
    # Sent as written: requests would quote a '%' that starts no escape.
    address = urlsplit(servers["go"])
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", f"/?{raw}")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    go = next(
        (bytes.fromhex(line.split(" ", 2)[2]) for line in text.splitlines() if line.startswith("query name ")), None
    )
    ours = go_query(raw).get("name")
    assert (ours.encode("utf-8", "surrogateescape") if ours is not None else None) == go
