"""A hostile user: inputs, names and files chosen to break the promises. Each ends in a correct
release or one sentence with the documented exit code, never a traceback, never a secret."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import FORGE_NAMES, REPOSITORY, STEPS, TOKEN, assert_no_token, local_sha256, stored

from release_action.forges import forge_class
from release_action.sandbox.state import Fault

UPLOAD = r"/file$"


def only_error(run) -> str:
    errors = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1, run.log
    assert "Traceback" not in run.log
    return errors[0]


def nothing_changed(forge) -> bool:
    return all(method == "GET" for method, _ in forge.calls())


# -- numbers, addresses and environment that used to crash or hang ------------------------------


@pytest.mark.parametrize(
    "inputs, words",
    [
        ({"timeout_seconds": "nan"}, ["'timeout_seconds'"]),
        ({"timeout_seconds": "inf"}, ["'timeout_seconds'"]),
        ({"timeout_seconds": "1e309"}, ["'timeout_seconds'"]),
        ({"retry_max_seconds": "inf"}, ["'retry_max_seconds'"]),
        ({"retry_wait_seconds": "-1"}, ["'retry_wait_seconds'"]),
        ({"parallel": "99999999999"}, ["'parallel'", "32"]),
        ({"retry_attempts": "1e3"}, ["'retry_attempts'"]),
        ({"api_url": "http://127.0.0.1:99999/rest-api"}, ["'api_url'"]),
        ({"api_url": "http://[::1/rest-api"}, ["'api_url'"]),
        ({"api_url": "https://git.example.ru/rest-api?x=1"}, ["'api_url'", "'?'"]),
        # Hosts no connection can be made to, which urllib3 refused only when connecting (exit 70 or 1).
        ({"api_url": "https://gitea..example/api/v1"}, ["'api_url'", "no connection"]),
        ({"api_url": "https://*.example/api/v1"}, ["'api_url'", "no connection"]),
        ({"api_url": f"https://{'x' * 64}.example/api/v1"}, ["'api_url'", "no connection"]),
    ],
)
def test_bad_numbers_and_addresses_are_named_before_any_request(publish, forge, inputs, words):
    started = time.monotonic()
    run = publish(**inputs)

    assert run.code == 2
    line = only_error(run)
    assert all(word in line for word in words), line
    assert forge.calls() == []
    assert time.monotonic() - started < 10


def test_a_requests_ca_bundle_that_is_a_pipe_is_named_before_any_request(publish, forge, tmp_path):
    """A FIFO exists, and the first request would wait for ever to read it."""
    import os

    pipe = tmp_path / "ca.pem"
    os.mkfifo(pipe)
    run = publish(env={"REQUESTS_CA_BUNDLE": str(pipe)})
    assert run.code == 2
    assert "neither a file nor a directory of certificates" in only_error(run)
    assert forge.calls() == []


def test_an_api_url_with_an_international_host_is_used_in_its_ascii_form(forge, dist, capsys):
    """A forge at a .рф address: its xn-- form is what is connected to, and what the token belongs to."""
    from release_action.inputs import resolve

    inputs = resolve(
        [],
        {
            "INPUT_API_URL": "https://гитфлик.рф/rest-api",
            "INPUT_TOKEN": TOKEN,
            "INPUT_REPOSITORY": REPOSITORY,
            "INPUT_TAG_NAME": "v1.0.0",
        },
        on_secret=lambda value: None,
    )
    assert inputs.api_url == "https://xn--c1akaid5bo.xn--p1ai/rest-api"
    import requests

    from release_action.forges import connect

    gitflic = connect(
        "gitflic",
        api_url=inputs.api_url,
        token=TOKEN,
        repository=REPOSITORY,
        policy=inputs.retry,
        timeout=5,
        ca_bundle=None,
    )
    for link, carries in (
        (f"{inputs.api_url}/project", True),
        ("https://гитфлик.рф/rest-api/project", True),
        ("https://гитфлик.рф.evil.test/rest-api/project", False),
    ):
        prepared = gitflic.http.session.prepare_request(requests.Request("GET", link))
        assert (TOKEN in prepared.headers.get("Authorization", "")) is carries, link


def test_a_missing_requests_ca_bundle_is_named_before_any_request(publish, forge):
    run = publish(env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"})

    assert run.code == 2
    assert "REQUESTS_CA_BUNDLE names /nonexistent/ca.pem" in only_error(run)
    assert forge.calls() == []


@pytest.mark.parametrize(
    "where",
    ["json_file", "dotenv_file", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "SOURCECRAFT_ENV", "SOURCECRAFT_OUTPUT"],
)
def test_an_output_that_cannot_be_written_stops_the_run_before_anything_changes(publish, forge, dist, where):
    blocker = dist.parent / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    target = str(blocker / "outputs")
    run = publish(**{where: target}) if where.endswith("_file") else publish(env={where: target})

    assert run.code == 2
    line = only_error(run)
    assert target in line and "cannot be written" in line
    assert forge.releases(REPOSITORY) == [] and forge.calls() == []


def test_body_path_with_a_byte_order_mark_publishes_the_text_alone(publish, forge, tmp_path):
    notes = tmp_path / "CHANGES.md"
    notes.write_bytes("\ufeff# Изменения\n".encode())
    assert publish(body_path=str(notes)).code == 0
    assert forge.releases(REPOSITORY)[0].body == "# Изменения\n"


# -- secrets ------------------------------------------------------------------------------------


def test_a_token_with_a_line_break_is_refused_without_showing_any_part(publish, forge):
    first, second = "ghp-first-half-1234", "second-half-5678"
    run = publish(token=f"{first}\n{second}")

    assert run.code == 2
    assert "'token'" in only_error(run)
    for piece in (first, second):
        assert_no_token(run.log, *run.files.values(), token=piece)
    assert forge.calls() == []


def test_a_mistyped_flag_never_echoes_its_value(publish, forge):
    run = publish("--tokn", "SECRET-VALUE-42", "--tag-name=v1.0.0")

    assert run.code == 2
    line = only_error(run)
    assert "--tokn" in line
    assert "SECRET-VALUE-42" not in run.log
    assert forge.calls() == []


@pytest.mark.parametrize(
    "argv, flag, meant",
    [
        (["--file", "tool-*.zip"], "--file", "--files"),  # argparse took it for --files
        (["--tokn", "-SECRET-VALUE-42"], "--tokn", "--token"),  # a value that looks like a flag is still a value
        (["--dry_run"], "--dry_run", "--dry-run"),
        (["--signing-pasphrase=SECRET-VALUE-42"], "--signing-pasphrase", "--signing-passphrase"),
    ],
)
def test_a_mistyped_flag_is_never_abbreviated_and_names_the_flag_it_resembles(publish, forge, argv, flag, meant):
    run = publish(*argv, files="")

    assert run.code == 2
    assert f"unknown flag {flag} (did you mean {meant}?)" in only_error(run)
    assert "SECRET-VALUE-42" not in run.log and "tool-*" not in run.log
    assert forge.calls() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["-----BEGIN PGP PRIVATE KEY BLOCK-----\nSECRET-VALUE-42"],
        ["-SECRET-VALUE-42"],
        ["SECRET-VALUE-42"],
        ["--", "--SECRET-VALUE-42"],
    ],
)
def test_a_stray_word_that_is_not_a_flag_is_never_shown(publish, forge, argv):
    run = publish(*argv)

    assert run.code == 2 and "an unexpected argument (not shown)" in only_error(run)
    assert "SECRET-VALUE-42" not in run.log
    assert forge.calls() == []


@pytest.mark.parametrize(
    "variable, meant",
    [
        ("INPUT_FILE", "INPUT_FILES"),
        ("input_files", "INPUT_FILES"),
        ("INPUT_DRY-RUN", "INPUT_DRY_RUN"),
        ("Input_Tag_Name", "INPUT_TAG_NAME"),
    ],
)
def test_a_misspelt_input_variable_is_an_input_error_naming_both(publish, forge, variable, meant):
    # The files the user meant: without the error, a release with no file and exit 0.
    run = publish(files="", env={variable: "SECRET-VALUE-42"})

    assert run.code == 2
    assert variable in only_error(run) and meant in only_error(run)
    assert "SECRET-VALUE-42" not in run.log
    assert forge.calls() == [] and forge.releases(REPOSITORY) == []


@pytest.mark.parametrize(
    "variable, shown",
    [
        ("INPUT_FILES\x1b[2K", "'INPUT_FILES\\x1b[2K'"),
        ("INPUT_TOKEN ", "'INPUT_TOKEN '"),
        ("INPUT_FILE\u0405", "'INPUT_FILE\\u0405'"),
    ],
)  # a Cyrillic S
def test_a_misspelt_variable_name_that_is_not_plain_is_shown_escaped(publish, forge, variable, shown):
    run = publish(env={variable: "x"})

    assert run.code == 2
    assert f"{shown} is not an input" in only_error(run)
    assert "\x1b" not in run.log and "\u0405" not in run.log


def test_credentials_in_the_api_address_are_never_printed(publish, forge):
    address = forge.api_url("gitflic").replace("http://", "http://deploy:hunter2-pass@")
    run = publish(api_url=address)

    assert run.code == 2
    assert "'api_url'" in only_error(run)
    assert_no_token(run.log, token="hunter2-pass")
    assert forge.calls() == []


def test_a_forge_that_echoes_the_token_percent_encoded_is_redacted(publish, forge):
    token = "tok/en+with=marks"
    forge.add_project(REPOSITORY, [], token)
    forge.inject(Fault("status", "GET", r"/release$", status=400, message=f"bad request for {quote(token, safe='')}"))
    run = publish(token=token)

    assert run.code == 1
    assert "HTTP 400" in only_error(run)
    assert_no_token(run.log, token=quote(token, safe=""))
    assert_no_token(run.log, token=token)


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("forge_name", FORGE_NAMES)
@pytest.mark.parametrize(
    "name",
    [
        'a"b.txt',
        'say "hi" %22 100%.txt',
        "pct%20.txt",
        "Привет мир.txt",
        "ü-nfd-u\u0308.bin",
        "😀 emoji.zip",
        "it's; a=b.tar.gz",
        "э" * 120 + ".txt",
        "a,b.txt",
    ],
)
def test_a_name_arrives_exactly_as_it_is_on_disk_and_a_rerun_uploads_nothing(
    publish, forge, tmp_path, forge_name, name
):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / name).write_bytes(os.urandom(1000))
    inputs = {"forge": forge_name, "working_directory": str(folder), "files": "*"}

    first = publish(**inputs)
    assert first.code == 0, first.log
    second = publish(**inputs)
    assert second.code == 0, second.log

    assert stored(forge) == {name: [local_sha256(folder / name)]}
    assert second.statuses() == {name: "unchanged"}


@pytest.mark.parametrize(
    "name, words",
    [
        ("=?utf-8?Q?hi?=.txt", "RFC 2047"),
        ('"' * 205 + ".txt", "too long"),  # 209 bytes on disk, 414 in a quoted string: over Tomcat's 512
    ],
)
def test_a_name_no_server_would_keep_is_refused_before_any_request(publish, forge, tmp_path, name, words):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / name).write_bytes(b"data")
    run = publish(working_directory=str(folder), files="*")

    assert run.code == 2
    assert words in only_error(run)
    assert forge.calls() == []


@pytest.mark.parametrize("dry_run", ["true", "false"])
def test_a_name_that_is_not_utf8_is_refused_before_any_request(publish, forge, tmp_path, dry_run):
    folder = tmp_path / "names"
    folder.mkdir()
    (Path(os.fsdecode(bytes(folder) + b"/caf\xe9.txt"))).write_bytes(b"data")
    run = publish(working_directory=str(folder), files="*", dry_run=dry_run)

    assert run.code == 2
    line = only_error(run)
    assert "caf\\xe9.txt" in line and "UTF-8" in line
    assert forge.calls() == []


@pytest.mark.parametrize("forge_name", FORGE_NAMES)
def test_a_name_the_forge_garbles_fails_the_run_and_names_both(publish, forge, tmp_path, forge_name):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "отчёт.pdf").write_bytes(os.urandom(2000))
    forge.inject(Fault("misread_name", "POST", STEPS[forge_name]["upload"][1], times=10))

    run = publish(forge=forge_name, working_directory=str(folder), files="*")

    assert run.code == 1
    line = only_error(run)
    assert "отчёт.pdf" in line and "under the name" in line
    [release] = forge.releases(REPOSITORY)
    if forge_class(forge_name).can_delete_assets:
        assert release.files == [], "the garbled copy was removed"
    else:
        assert "web interface" in line and release.draft, "SourceCraft cannot delete: said so, left a draft"


# -- patterns -------------------------------------------------------------------------------------


def test_commas_inside_braces_belong_to_the_pattern_and_exclusions_keep_them(publish, forge, tmp_path):
    folder = tmp_path / "brace"
    (folder / "dist").mkdir(parents=True)
    for name in ("app.zip", "app.tar.gz", "app.debug", "app.pdb", "notes.txt"):
        (folder / "dist" / name).write_bytes(os.urandom(100))
    run = publish(working_directory=str(folder), files="dist/*.{zip,tar.gz,debug,pdb}, !dist/*.{debug,pdb}")

    assert run.code == 0, run.log
    assert sorted(stored(forge)) == ["app.tar.gz", "app.zip"]


def test_a_file_with_a_comma_in_its_name_can_be_selected(publish, forge, tmp_path):
    folder = tmp_path / "comma"
    folder.mkdir()
    (folder / "a,b.txt").write_bytes(b"one")
    (folder / "c.txt").write_bytes(b"two")
    run = publish(working_directory=str(folder), files=r"a\,b.txt, c.txt")

    assert run.code == 0, run.log
    assert sorted(stored(forge)) == ["a,b.txt", "c.txt"]


def test_recursive_patterns_end_quickly_over_symlink_loops(publish, forge, tmp_path):
    folder = tmp_path / "loops"
    (folder / "dist" / "deep").mkdir(parents=True)
    (folder / "dist" / "deep" / "app.tar.gz").write_bytes(b"app")
    (folder / "dist" / "self").symlink_to(".")
    (folder / "dist" / "deep" / "parent").symlink_to("..")
    started = time.monotonic()
    run = publish(working_directory=str(folder), files="**/*.tar.gz")

    assert time.monotonic() - started < 20
    assert run.code == 0, run.log
    assert stored(forge) == {"app.tar.gz": [local_sha256(folder / "dist" / "deep" / "app.tar.gz")]}


# -- files that change while they are published -----------------------------------------------


@pytest.mark.parametrize("change", ["grow", "shrink", "rewrite"])
@pytest.mark.parametrize("forge_name", FORGE_NAMES)
def test_a_file_that_changes_while_it_is_published_fails_naming_it_and_leaves_no_cut_copy(
    publish, forge, tmp_path, forge_name, change
):
    folder = tmp_path / "changing"
    folder.mkdir()
    log = folder / "build.log"
    log.write_bytes(os.urandom(500_000))
    creating = STEPS[forge_name]["create"][1]
    # The release is created slowly; meanwhile the build writes on.
    forge.inject(Fault("slow", "POST", creating, seconds=1.0))

    def write_on() -> None:
        time.sleep(0.4)
        if change == "grow":
            with log.open("ab") as handle:
                handle.write(b"more lines\n" * 1000)
        elif change == "shrink":
            os.truncate(log, 1000)
        else:
            log.write_bytes(os.urandom(500_000))

    writer = threading.Thread(target=write_on)
    writer.start()
    run = publish(forge=forge_name, working_directory=str(folder), files="*", timeout_seconds="5")
    writer.join()

    assert run.code == 1
    line = only_error(run)
    assert str(log) in line and "changed while it was being published" in line
    [release] = forge.releases(REPOSITORY)
    assert release.files == [], "nothing cut short or mixed was stored"

    again = publish(forge=forge_name, working_directory=str(folder), files="*")
    assert again.code == 0, again.log
    assert stored(forge) == {"build.log": [local_sha256(log)]}


# -- answers that do not say what happened --------------------------------------------------------


def test_an_upload_answer_that_does_not_list_the_file_is_checked_by_reading_the_release(publish, forge, dist):
    forge.inject(Fault("empty_answer", "POST", UPLOAD, times=3))

    run = publish()

    assert run.code == 0, run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    ids = {asset["name"]: asset["id"] for asset in run.json["assets"]}
    assert ids == {f.name: f.id for f in forge.releases(REPOSITORY)[0].files}


# -- messages that tell the truth -------------------------------------------------------------------


def test_the_job_tokens_missing_release_rights_are_named(publish, forge):
    forge.inject(
        Fault(
            "status",
            "POST",
            r"/release$",
            status=500,
            times=10,
            message="org.springframework.dao.InvalidDataAccessApiUsageException: author is null",
        )
    )
    run = publish(token="", env={"CI_JOB_TOKEN": TOKEN, "CI_SERVER_REST_URL": forge.api_url("gitflic")})

    assert run.code == 1
    line = only_error(run)
    assert "CI_JOB_TOKEN" in line and "GITFLIC_TOKEN" in line and "release rights" in line


def test_a_content_type_the_forge_refuses_names_the_file_status_and_detail(publish, forge, dist):
    forge.inject(
        Fault("status", "POST", UPLOAD, status=415, message="Content type 'application/x-debian-package' not supported")
    )
    run = publish(files="tool-linux-amd64.tar.gz")

    assert run.code == 1
    line = only_error(run)
    assert "tool-linux-amd64.tar.gz" in line and "415" in line and "application/x-debian-package" in line


def test_a_delete_that_keeps_failing_during_a_replace_says_both_copies_are_there(publish, forge, dist):
    assert publish().code == 0
    (dist / "checksums.txt").write_text("changed\n")
    forge.inject(Fault("status", "DELETE", UPLOAD, status=503, times=20))

    run = publish(retry_attempts="2")

    assert run.code == 1
    assert "other copy(ies) of it could not be removed" in only_error(run) and "holds more than one" in only_error(run)
    assert len(stored(forge)["checksums.txt"]) == 2


def test_sourcecraft_target_branch_with_an_existing_tag_says_to_leave_it_out(publish, forge):
    run = publish(forge="sourcecraft", target_branch="main")

    assert run.code == 1
    line = only_error(run)
    assert "already exists" in line and "leave target_branch out" in line and "BranchAlreadyExists" in line


def test_sourcecraft_names_an_unknown_repository(publish, forge):
    run = publish(forge="sourcecraft", repository="acme/nothing")

    assert run.code == 1
    assert "Repository acme/nothing was not found on SourceCraft" in only_error(run)


# GitFlic takes ten files a request; GitVerse one, and reads twice.
@pytest.mark.parametrize("forge_name, files, needed", [("gitflic", 5050, 508), ("gitverse", 505, 509)])
def test_a_run_over_the_hourly_request_limit_is_warned_about(publish, forge, tmp_path, forge_name, files, needed):
    """GitFlic and GitVerse both document 500 API requests an hour."""
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(files):
        (folder / f"part-{n:04}.bin").write_bytes(b"x")
    run = publish(forge=forge_name, working_directory=str(folder), files="*", dry_run="true")

    assert run.code == 0, run.log
    assert f"::warning::This run needs about {needed} API requests" in run.log and "500 an hour" in run.log


# -- outputs within each CI system's limits ---------------------------------------------------------


def test_the_dotenv_report_stays_within_gitlabs_limits_whatever_the_file_count(publish, forge, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(40):
        (folder / f"{'long-name-' * 20}{n:02}.bin").write_bytes(os.urandom(10))
    run = publish(working_directory=str(folder), files="*")

    assert run.code == 0, run.log
    dotenv = run.files["dotenv"]
    assert len(dotenv.encode()) < 5 * 1024 and len(dotenv.splitlines()) <= 20
    values = dict(line.split("=", 1) for line in dotenv.splitlines())
    assert values["RELEASE_ASSET_COUNT"] == "40"
    assert len(json.loads(Path(values["RELEASE_ASSETS_FILE"]).read_text())["assets"]) == 40


def test_the_step_summary_shows_names_as_they_are(publish, forge, tmp_path):
    folder = tmp_path / "marks"
    folder.mkdir()
    (folder / "a|b] [c](x) *d*.txt").write_bytes(b"data")
    run = publish(working_directory=str(folder), files="*")

    assert run.code == 0, run.log
    [row] = [line for line in run.files["summary"].splitlines() if "uploaded" in line]
    assert row.startswith(r"| [a\|b\] \[c\]\(x\) \*d\*.txt](")
    assert row.count(" | ") == 3  # four cells: the name's | did not make a fifth
