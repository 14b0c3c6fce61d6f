"""Gitea, Forgejo and GitVerse: the same promises through Gitea's dialect, and GitVerse's rules.

Each GitVerse rule the sandbox keeps (shared/api/README.md) is shown twice: the sandbox keeps it,
asked directly, and the program, run against it, copes with it.
"""

from __future__ import annotations

import http.server
import os
import threading

import pytest
import requests
from conftest import GITVERSE_SHA, REPOSITORY, TOKEN, local_sha256, stored

from release_action.sandbox.state import Fault

GITVERSE = "application/vnd.gitverse.object+json;version=1"
DIALECT = pytest.mark.parametrize("forge_name", ["gitea", "gitverse"])


def only_error(run) -> str:
    [line] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    return line


def api(forge, forge_name: str, path: str, method: str = "GET", **kwargs) -> requests.Response:
    """A request to the sandbox's dialect, as a client other than the program sends it."""
    headers = {
        "Authorization": f"token {TOKEN}" if forge_name == "gitea" else f"Bearer {TOKEN}",
        **({"Accept": GITVERSE} if forge_name == "gitverse" else {}),
        **kwargs.pop("headers", {}),
    }
    return requests.request(method, forge.api_url(forge_name) + path, headers=headers, timeout=30, **kwargs)


# -- the dialect's promises -----------------------------------------------------------------------


@DIALECT
def test_a_new_release_is_a_draft_until_its_files_are_verified_then_published(publish, forge, dist, forge_name):
    run = publish(forge=forge_name, name="Tool 1.0", body="notes", prerelease="true")

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert (release.title, release.body, release.prerelease, release.draft) == ("Tool 1.0", "notes", True, False)
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    changes = [(method, path) for method, path in forge.calls() if method in ("POST", "PATCH")]
    assert changes[0] == ("POST", f"{forge.api_url(forge_name).removeprefix(forge.url)}/repos/{REPOSITORY}/releases")
    assert changes[-1][0] == "PATCH", "published last, after every upload"
    assert [method for method, _ in changes].count("POST") == 1 + 3
    assert run.json["release_url"].endswith(f"/{REPOSITORY}/releases/tag/v1.0.0")
    assert {asset["status"] for asset in run.json["assets"]} == {"uploaded"}


@DIALECT
def test_draft_true_leaves_the_release_a_draft_and_a_rerun_finds_it(publish, forge, dist, forge_name):
    first = publish(forge=forge_name, draft="true")
    again = publish(forge=forge_name, draft="true")

    assert first.code == 0 and again.code == 0, first.log + again.log
    [release] = forge.releases(REPOSITORY)
    assert release.draft is True
    assert set(again.statuses().values()) == {"unchanged"}


@DIALECT
def test_a_changed_file_is_replaced_and_the_old_copy_deleted_after_the_new_one_is_verified(
    publish, forge, dist, forge_name
):
    assert publish(forge=forge_name).code == 0
    (dist / "checksums.txt").write_text("rebuilt\n")

    run = publish(forge=forge_name)

    assert run.code == 0, run.log
    assert run.statuses()["checksums.txt"] == "replaced"
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    calls = forge.calls()
    upload = max(i for i, (method, path) in enumerate(calls) if method == "POST" and path.endswith("/assets"))
    delete = max(i for i, (method, path) in enumerate(calls) if method == "DELETE")
    assert upload < delete, "the old copy goes only once the new one is in place"


@DIALECT
@pytest.mark.parametrize(
    "name",
    [
        "a+b c.tar.gz",
        "semi;colon & amp=eq.txt",
        "hash#frag?q.zip",
        "100%25 %zz.bin",
        "Привет+мир.txt",
        "tilde~dot..dash-.deb",
    ],
)
def test_a_name_full_of_query_characters_arrives_exactly(publish, forge, tmp_path, forge_name, name):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / name).write_bytes(os.urandom(500))

    run = publish(forge=forge_name, working_directory=str(folder), files="*")

    assert run.code == 0, run.log
    assert stored(forge) == {name: [local_sha256(folder / name)]}


def test_a_release_for_a_tag_that_does_not_exist_is_refused_before_gitea_would_tag_the_default_branch(publish, forge):
    run = publish(forge="gitea", tag_name="v9.9.9")

    assert run.code == 1
    assert "Tag 'v9.9.9' was not found" in only_error(run) and "target_branch" in only_error(run)
    assert forge.releases(REPOSITORY) == [] and "v9.9.9" not in forge.tags(REPOSITORY, "gitea")


@pytest.mark.parametrize(
    "forge_name, inputs, code",
    [
        ("gitea", {"tag_name": "v9.9.9"}, 1),  # Gitea would tag the default branch's head
        ("gitverse", {"env": {"GITHUB_REF_NAME": "v2.0.0"}}, 2),  # no commit known: the run was started by another tag
    ],
    ids=["gitea-missing-tag", "gitverse-no-commit"],
)
def test_a_dry_run_refuses_what_the_real_run_refuses_in_the_same_sentence(publish, forge, forge_name, inputs, code):
    dry = publish(forge=forge_name, dry_run="true", **inputs)
    changes_in_dry_run = [call for call in forge.calls() if call[0] != "GET"]
    real = publish(forge=forge_name, **inputs)

    assert (dry.code, real.code) == (code, code), dry.log + real.log
    assert only_error(dry) == only_error(real)
    assert changes_in_dry_run == [] and forge.releases(REPOSITORY) == []


def test_target_branch_makes_the_tag_when_the_release_is_published(publish, forge):
    run = publish(forge="gitea", tag_name="v9.9.9", target_branch="main")

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert (release.tag, release.target_branch, release.draft) == ("v9.9.9", "main", False)
    assert "v9.9.9" in forge.tags(REPOSITORY, "gitea")


def test_a_refused_change_names_the_rights_the_token_needs(publish, forge):
    forge.inject(Fault("status", "POST", r"/releases$", status=403, message="token does not have required scope"))

    run = publish(forge="gitea")

    assert run.code == 1
    assert "write:repository" in only_error(run) and "contents: write" in only_error(run)


def test_a_repository_gitea_does_not_know_is_named(publish, forge):
    run = publish(forge="gitea", repository="acme/missing")

    assert run.code == 1
    assert "Repository acme/missing was not found on Gitea" in only_error(run)


def test_gitea_needs_its_address(publish):
    run = publish(forge="gitea", api_url="")

    assert run.code == 2
    assert "api_url" in only_error(run) and "https://HOST/api/v1" in only_error(run)


def test_one_sandbox_serves_a_release_on_gitflic_then_one_on_gitea_each_its_own(publish, forge, dist):
    """As two real forges are two servers: the same owner/name on each is its own repository."""
    on_gitflic = publish(forge="gitflic")
    on_gitea = publish(forge="gitea", retry_attempts="1")

    assert (on_gitflic.code, on_gitea.code) == (0, 0), on_gitflic.log + on_gitea.log
    [gitflic_release], [gitea_release] = forge.releases(REPOSITORY, "gitflic"), forge.releases(REPOSITORY, "gitea")
    assert gitea_release.id.isdigit() and not gitflic_release.id.isdigit(), "each in its own dialect's ids"
    assert set(on_gitea.statuses().values()) == {"uploaded"}, "a release of its own, not GitFlic's files"
    for release in (gitflic_release, gitea_release):
        assert sorted(f.name for f in release.files) == sorted(p.name for p in dist.iterdir())


# -- limits the server sets, in one sentence naming the setting -----------------------------------


@pytest.mark.parametrize(
    "version, setting, words",
    [
        ("1.25.4", "[attachment] MAX_SIZE", "attachment is too large (over 250000 bytes)"),
        ("1.26.0", "[repository.release] FILE_MAX_SIZE", "attachment exceeds limit 250000"),  # go-gitea/gitea#36697
        ("1.27.0+dev-12-gabcdef0", "[repository.release] FILE_MAX_SIZE", "attachment exceeds limit 250000"),
        ("1.26", "[repository.release] FILE_MAX_SIZE", "attachment exceeds limit 250000"),
        ("11.0.1+gitea-1.22.0", "[attachment] MAX_SIZE", "attachment is too large"),  # Forgejo: the Gitea it follows
    ],
)
def test_a_file_over_the_size_limit_names_the_setting_of_the_server_s_version(
    publish, forge, dist, version, setting, words
):
    forge.state.settings.attachment_max_bytes = 250_000
    forge.state.settings.gitea_version = version

    run = publish(forge="gitea", retry_attempts="2")

    assert run.code == 1
    error = only_error(run)
    assert "tool-linux-amd64.tar.gz" in error and "too large" in error and f"raise {setting} " in error
    [other] = {"[attachment] MAX_SIZE", "[repository.release] FILE_MAX_SIZE"} - {setting}
    assert other not in error, "the one setting of that version"
    assert "app.ini" in error and words in error, "Gitea's own words"
    versions = [call for call in forge.calls() if call[1].endswith("/version")]
    assert versions and forge.calls().index(versions[0]) > forge.calls().index(
        next(call for call in forge.calls() if call[1].endswith("/assets"))
    ), "asked only after the refusal"


def test_a_clean_run_never_asks_the_server_s_version(publish, forge):
    assert publish(forge="gitea").code == 0
    assert not [call for call in forge.calls() if call[1].endswith("/version")]


def test_a_server_that_does_not_say_its_version_has_both_settings_named(publish, forge, dist):
    forge.state.settings.attachment_max_bytes = 250_000
    forge.inject(Fault("status", "GET", r"/version$", status=404, message="Not Found"))

    run = publish(forge="gitea", retry_attempts="2")

    assert run.code == 1
    error = only_error(run)
    assert "[repository.release] FILE_MAX_SIZE (in MiB) on Gitea 1.26 and later" in error
    assert "[attachment] MAX_SIZE" in error


def test_a_proxy_in_front_refusing_the_size_is_named_too(publish, forge, dist):
    forge.state.settings.proxy_max_body_bytes = 250_000

    run = publish(forge="gitea", retry_attempts="2")

    assert run.code == 1
    assert "client_max_body_size" in only_error(run) and "413" in only_error(run)


def test_a_type_allowed_types_refuses_names_the_setting(publish, forge, dist):
    forge.state.settings.allowed_types = [".zip", ".txt"]

    run = publish(forge="gitea")

    assert run.code == 1
    error = only_error(run)
    assert "tool-linux-amd64.tar.gz" in error and "[repository.release] ALLOWED_TYPES" in error
    [release] = forge.releases(REPOSITORY)
    assert release.draft is True, "not published without the file"


@pytest.mark.parametrize("name", ["index.html", "REPORT.HTML", "notes.qmd"])
def test_gitverse_refuses_html_before_any_request(publish, forge, tmp_path, name):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / name).write_text("<p>hi</p>")

    run = publish(forge="gitverse", working_directory=str(folder), files="*")

    assert run.code == 2
    assert name in only_error(run) and "archive" in only_error(run)
    assert forge.calls() == []
    assert (
        api(
            forge,
            "gitverse",
            f"/repos/{REPOSITORY}/releases",
            "POST",
            json={"tag_name": "v1.0.0", "target_commitish": GITVERSE_SHA},
        ).status_code
        == 201
    )
    [release] = forge.releases(REPOSITORY)
    refused = api(
        forge,
        "gitverse",
        f"/repos/{REPOSITORY}/releases/{release.id}/assets",
        "POST",
        params={"name": name},
        files={"attachment": (name, b"<p>hi</p>")},
    )
    assert refused.status_code == 400, "the sandbox refuses it too"


# -- the token goes only to the forge's own hosts -------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self):
        self.seen.append(dict(self.headers))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@DIALECT
def test_a_download_link_to_another_host_is_fetched_without_the_token(publish, forge, forge_name):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    try:
        # A forge whose answers point its files elsewhere (a hostile or misconfigured ROOT_URL).
        forge.state.public_url = f"http://localhost:{other.server_address[1]}"
        run = publish(forge=forge_name, files="checksums.txt", retry_attempts="2")
    finally:
        other.shutdown()
        other.server_close()

    assert all("Authorization" not in headers for headers in _Recorder.seen)
    if forge_name == "gitea":  # it fetches each copy by its uuid from the API's own host, whatever the link says
        assert run.code == 0 and _Recorder.seen == [], run.log
    else:  # GitVerse's links are the files' own: followed, without the token, and the check fails there
        assert run.code == 1 and "checksums.txt" in only_error(run), run.log
        assert _Recorder.seen, "the program did try the link"


# -- GitVerse's rules, each kept by the sandbox and met by the program ------------------------------


def test_gitverse_answers_a_request_without_its_accept_header_400_with_an_empty_body(forge):
    answer = api(forge, "gitverse", f"/repos/{REPOSITORY}/releases", headers={"Accept": "application/json"})

    assert (answer.status_code, answer.content) == (400, b"")
    assert api(forge, "gitverse", f"/repos/{REPOSITORY}/releases/tags/v1.0.0").status_code == 404


def test_the_program_explains_gitverse_s_empty_400(publish, forge):
    forge.inject(Fault("status", "GET", r"/releases/tags/", status=400, code="empty"))

    run = publish(forge="gitverse")

    assert run.code == 1
    assert "Accept header" in only_error(run) and "https://api.gitverse.ru" in only_error(run)


def test_gitverse_answers_404_for_a_repository_with_no_release_and_the_program_creates_the_first(publish, forge):
    assert api(forge, "gitverse", f"/repos/{REPOSITORY}/releases").status_code == 404

    run = publish(forge="gitverse")

    assert run.code == 0, run.log
    assert len(forge.releases(REPOSITORY)) == 1


def test_gitverse_pages_hold_at_most_30_and_a_draft_is_found_past_the_first_page(publish, forge):
    draft = api(
        forge,
        "gitverse",
        f"/repos/{REPOSITORY}/releases",
        "POST",
        json={"tag_name": "v1.0.0", "target_commitish": GITVERSE_SHA, "draft": True},
    )
    assert draft.status_code == 201
    for n in range(35):  # newer releases, listed before the draft
        forge.add_project(REPOSITORY, [f"v0.{n}"])
        assert (
            api(
                forge,
                "gitverse",
                f"/repos/{REPOSITORY}/releases",
                "POST",
                json={"tag_name": f"v0.{n}", "target_commitish": GITVERSE_SHA},
            ).status_code
            == 201
        )
    assert len(api(forge, "gitverse", f"/repos/{REPOSITORY}/releases", params={"per_page": 100}).json()) == 30
    assert api(forge, "gitverse", "/repos/acme/tool/releases/tags/v1.0.0").status_code == 404, "a draft, not by tag"

    run = publish(forge="gitverse")

    assert run.code == 0, run.log
    assert [r.tag for r in forge.releases(REPOSITORY)].count("v1.0.0") == 1, "the draft was found, not made twice"
    assert next(r for r in forge.releases(REPOSITORY) if r.tag == "v1.0.0").draft is False
    pages = [path for method, path in forge.calls() if method == "GET" and path.endswith("/releases")]
    assert len(pages) >= 2


def test_gitverse_refuses_a_branch_as_target_commitish(forge):
    answer = api(
        forge,
        "gitverse",
        f"/repos/{REPOSITORY}/releases",
        "POST",
        json={"tag_name": "v1.0.0", "target_commitish": "main"},
    )

    assert answer.status_code == 422 and "SHA" in answer.json()["message"]


def test_on_gitverse_the_release_is_made_from_the_commit_of_the_tag_that_started_the_run(publish, forge):
    run = publish(forge="gitverse")

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert release.target_branch == GITVERSE_SHA


def test_on_gitverse_a_branch_name_as_target_branch_is_refused_before_any_request(publish, forge):
    run = publish(forge="gitverse", target_branch="main")

    assert run.code == 2
    assert "full commit SHA" in only_error(run) and "git rev-parse" in only_error(run)
    assert forge.calls() == []


def test_on_gitverse_outside_a_run_started_by_the_tag_the_commit_must_be_given_before_any_request(publish, forge):
    run = publish(forge="gitverse", env={"GITHUB_REF_NAME": "v2.0.0"})  # the run was started by another tag

    assert run.code == 2
    assert "target_branch" in only_error(run) and "git rev-parse" in only_error(run)
    assert forge.calls() == [], "the README's failures table: before any request"


def test_gitverse_takes_only_bearer_tokens(forge):
    answer = api(forge, "gitverse", f"/repos/{REPOSITORY}/releases", headers={"Authorization": f"token {TOKEN}"})

    assert answer.status_code == 401


# -- a forge that lies or tries -------------------------------------------------------------------


def test_a_release_page_address_with_workflow_commands_in_it_is_not_taken(publish, forge, monkeypatch):
    from release_action.sandbox import gitea as sandbox_gitea

    original = sandbox_gitea._release_json
    hostile = "https://gitea.example/r\n::add-mask::v1.0.0\n::error title=Signed::signature INVALID"
    monkeypatch.setattr(sandbox_gitea, "_release_json", lambda *args: {**original(*args), "html_url": hostile})

    run = publish(forge="gitea")

    assert run.code == 0, run.log
    assert not [line for line in run.log.splitlines() if line.startswith(("::add-mask::v1", "::error"))], run.log
    assert run.json["release_url"] == f"{forge.url}/{REPOSITORY}/releases/tag/v1.0.0"
    forge.state.exchanges.clear()  # its answers break the description's shape on purpose


def test_a_delete_the_forge_answers_404_while_it_keeps_the_file_fails_in_one_sentence(
    publish, forge, dist, monkeypatch
):
    from release_action.sandbox import gitea as sandbox_gitea
    from release_action.sandbox.state import Refusal

    assert publish(forge="gitea").code == 0
    (dist / "checksums.txt").write_text("rebuilt\n")

    def refuse_but_keep(*args, **kwargs):
        raise Refusal(404, "attachment not found")

    monkeypatch.setattr(sandbox_gitea, "delete_asset", refuse_but_keep)  # routes() reads it on each request
    run = publish(forge="gitea")

    assert run.code == 1
    assert "checksums.txt" in only_error(run) and "still lists it" in only_error(run)


@pytest.mark.parametrize("asset_id", ["n4", True, 2.5, "../../1"])
def test_an_asset_id_that_is_not_a_whole_number_is_refused(publish, forge, monkeypatch, asset_id):
    from release_action.sandbox import gitea as sandbox_gitea

    original = sandbox_gitea._asset_json
    monkeypatch.setattr(sandbox_gitea, "_asset_json", lambda *args: {**original(*args), "id": asset_id})

    run = publish(forge="gitea", files="checksums.txt", retry_attempts="2")

    assert run.code == 1 and "without a numeric id" in only_error(run), run.log
    forge.state.exchanges.clear()


def test_a_forge_that_gives_every_file_one_id_cannot_pass_a_corrupt_copy(publish, forge, tmp_path, monkeypatch):
    from release_action.sandbox import gitea as sandbox_gitea

    folder = tmp_path / "same"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"hello")
    (folder / "b.bin").write_bytes(b"hello")
    original = sandbox_gitea._asset_json
    monkeypatch.setattr(sandbox_gitea, "_asset_json", lambda *args: {**original(*args), "id": 7})
    forge.inject(Fault("corrupt", "POST", r"/assets$", times=1), Fault("corrupt", "POST", r"/assets$", times=1))

    run = publish(forge="gitea", working_directory=str(folder), files="*", parallel="1", retry_attempts="2")

    published = {
        stored.name: stored.path.read_bytes() for release in forge.releases(REPOSITORY) for stored in release.files
    }
    # Either every stored copy is the local file, or the run failed in one sentence: never a corrupt
    # copy passed on another file's hash.
    if run.code == 0:
        assert published == {"a.bin": b"hello", "b.bin": b"hello"}, run.log
    else:
        assert run.code == 1 and only_error(run), run.log
    forge.state.exchanges.clear()


def _carries_token(forge_name: str, api_url: str, link: str) -> bool:
    """Whether the program's own session, as connect() builds it, attaches the token to a request for ``link``:
    the one rule every request goes through (transport.CredentialRule), on the prepared request."""
    import requests

    from release_action.forges import connect
    from release_action.retries import RetryPolicy

    forge = connect(
        forge_name,
        api_url=api_url,
        token=TOKEN,
        repository=REPOSITORY,
        policy=RetryPolicy(attempts=1),
        timeout=5,
        ca_bundle=None,
    )
    prepared = forge.http.session.prepare_request(requests.Request("GET", link))
    return TOKEN in prepared.headers.get("Authorization", "")


@pytest.mark.parametrize(
    "api_url, link, trusted",
    [
        ("https://api.example.com/api/v1", "https://example.com/attachments/u", False),  # the parent domain is not its
        ("https://api.example.com/api/v1", "https://api.example.com/attachments/u", True),
        ("https://git.example.com:443/api/v1", "https://git.example.com/attachments/u", True),
        ("https://git.example.com/api/v1", "http://git.example.com/attachments/u", False),
        ("https://git.example.com/api/v1", "https://git.example.com.evil.test/attachments/u", False),
        (
            "https://git.example.com/api/v1",
            "https://evil.test\\@git.example.com/attachments/u",
            False,
        ),  # urllib3 connects to evil.test
        ("https://git.example.com/api/v1", "https://user@git.example.com/attachments/u", False),
        ("https://git.example.com/api/v1", "https://GIT.example.com./attachments/u", False),
        ("http://[::1]:3000/api/v1", "http://[::1]:3000/attachments/u", True),  # read alike by both parsers
    ],
)
def test_the_token_goes_only_to_the_gitea_server_s_own_host(api_url, link, trusted):
    assert _carries_token("gitea", api_url, link) is trusted


@pytest.mark.parametrize(
    "link, trusted",
    [
        ("https://gitverse.ru/api/attachments/u", True),
        ("https://gitverse.ru:443/api/attachments/u", True),
        ("https://evil.ru/api/attachments/u", False),
        ("http://evil.ru\\@gitverse.ru/api/attachments/u", False),
        ("https://gitvеrse.ru/api/attachments/u", False),
    ],
)  # a Cyrillic е
def test_gitverse_s_token_goes_to_its_api_and_its_web_side_only(link, trusted):
    assert _carries_token("gitverse", "https://api.gitverse.ru:443", link) is trusted


@DIALECT
def test_downloads_that_always_answer_not_found_fail_in_one_sentence_naming_the_links(publish, forge, dist, forge_name):
    """A copy another job removed between a read and its download no longer counts; one still listed whose
    download says it does not exist is the forge's links failing: said so, not uploaded again and again."""
    forge.inject(Fault("web_not_found", "GET", "attachments/", times=1000))
    run = publish(forge=forge_name)
    assert run.code == 1 and "Traceback" not in run.log, run.log
    assert "downloading it to check it answers that it does not exist" in only_error(run)
    uploads = [call for call in forge.calls() if call[0] == "POST" and call[1].endswith("/assets")]
    assert len(uploads) <= len(list(dist.iterdir())), uploads


@DIALECT
def test_a_download_to_check_a_file_says_how_far_it_is_as_an_upload_does(publish, forge, forge_name, monkeypatch):
    monkeypatch.setattr("release_action.log.PROGRESS_EVERY_SECONDS", 0.0)  # a line for every piece, however quick
    run = publish(forge=forge_name)
    assert run.code == 0, run.log
    assert "  tool-linux-amd64.tar.gz (downloaded to check it): 100% of 300000 bytes" in run.log
    assert "  tool-linux-amd64.tar.gz (downloaded to check it): downloaded in" in run.log


@DIALECT
def test_a_download_that_never_ends_stops_one_byte_past_the_listed_size(publish, forge, forge_name):
    """A link that streams for ever (a hostile or broken web side): the check reads one byte past the size
    the forge lists, finds the copy wrong, and replaces it; the run does not follow the stream."""
    from release_action.sandbox.state import ENDLESS_BYTES

    forge.inject(Fault("web_endless", "GET", "attachments/", times=1))
    run = publish(forge=forge_name, files="checksums.txt", timeout_seconds="3")
    assert run.code == 0, run.log
    assert 0 < forge.state.endless_sent < ENDLESS_BYTES // 8, f"{forge.state.endless_sent} bytes were read"
