"""The sandbox keeps to the forges' own API descriptions, and the program reads whatever they allow.

Every test's exchanges are checked by conftest's ``contract`` fixture; these tests show the check
sees real runs, fails when one sandbox answer is changed, holds the program's requests to the
description, and that every answer the vendor's schemas allow is read or refused in one sentence.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import requests
from conftest import REPOSITORY, ROOT, TOKEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from release_action.errors import ForgeError
from release_action.forges import Asset, Release, connect
from release_action.retries import RetryPolicy
from release_action.sandbox import contract, gitea, gitflic, sourcecraft
from release_action.sandbox.state import NOTHING, Exchange

SC = {"forge": "sourcecraft"}
#: The vendor's export, copied verbatim from sourcecraft-sdk's spec/ at 632b703e (2025-12-13).
VENDOR_SHA256 = "170aa3a6c1f170a9e34fbae12189dd8a673b02b0f50eafe73ae6f14ea3e631a3"
PROGRAM = "release-action/test"


def _operations_used(forge) -> set[str]:
    used = set()
    for exchange in forge.exchanges():
        operation = contract.description(exchange.forge).operation(exchange.method, exchange.path)
        used.add(f"{exchange.forge} {operation}")
    return used


# -- the check sees every run ------------------------------------------------------------------


def test_the_sourcecraft_description_is_the_vendors_own_file():
    path = ROOT / "release_action" / "sandbox" / "descriptions" / "sourcecraft-swagger.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == VENDOR_SHA256
    assert json.loads(path.read_text())["info"]["title"] == "SourceCraft API"


@pytest.mark.parametrize("create_status", [200, 201])
def test_a_sourcecraft_release_made_updated_and_checked_keeps_to_the_description(publish, forge, create_status):
    forge.state.settings.sourcecraft_create_status = create_status
    assert publish(**SC, checksums="SHA256SUMS", name="Tool").code == 0
    assert publish(**SC, checksums="SHA256SUMS", name="Tool, renamed").code == 0

    assert contract.problems(forge.exchanges()) == []
    used = _operations_used(forge)
    for operation in (
        "POST /repos/{org_slug}/{repo_slug}/releases",
        "POST /repos/{org_slug}/{repo_slug}/releases/tag/{release_tag}/attachments",
        "POST /repos/{org_slug}/{repo_slug}/releases/tag/{release_tag}/publish",
        "GET /repos/{org_slug}/{repo_slug}/releases/tag/{release_tag}",
    ):
        assert f"sourcecraft {operation}" in used
    # The requests beyond the description are the two docs/sandbox.md names, and no other.
    assert contract.unlisted(forge.exchanges()) == {f"sourcecraft {op}" for op in contract.BEYOND["sourcecraft"]}


@pytest.mark.parametrize("forge_name", ["gitea", "gitverse"])
def test_a_gitea_dialect_release_made_replaced_and_pruned_keeps_to_gitea_s_description(
    publish, forge, dist, forge_name
):
    assert publish(forge=forge_name, checksums="SHA256SUMS").code == 0
    (dist / "checksums.txt").write_text("changed\n")
    (dist / "tool-windows-amd64.zip").unlink()
    assert (
        publish(
            forge=forge_name, checksums="SHA256SUMS", name="Tool", prerelease="true", remove_other_assets="true"
        ).code
        == 0
    )

    assert contract.problems(forge.exchanges()) == []
    used = _operations_used(forge)
    for operation in (
        "GET /repos/{owner}/{repo}/releases/tags/{tag}",
        "POST /repos/{owner}/{repo}/releases",
        "PATCH /repos/{owner}/{repo}/releases/{id}",
        "POST /repos/{owner}/{repo}/releases/{id}/assets",
        "DELETE /repos/{owner}/{repo}/releases/{id}/assets/{attachment_id}",
    ):
        assert f"{forge_name} {operation}" in used
    if forge_name == "gitea":
        assert "gitea GET /repos/{owner}/{repo}/tags/{tag}" in used
    else:  # the list, paged for the draft, that GitVerse does not show by its tag
        assert "gitverse GET /repos/{owner}/{repo}/releases" in used
    assert contract.unlisted(forge.exchanges()) == set()


def test_the_gitea_description_is_gitea_s_own_release_part():
    document = json.loads((ROOT / "release_action" / "sandbox" / "descriptions" / "gitea-swagger.json").read_text())
    assert document["x-extracted"]["from"].startswith("https://github.com/go-gitea/gitea/blob/")
    assert document["info"]["title"] == "Gitea API." and document["basePath"].endswith("/api/v1")
    references = set(re.findall(r'"\$ref": "#/(\w+)/(\w+)"', json.dumps(document, indent=1)))
    assert references and all(name in document[kind] for kind, name in references), "every reference is inside"


def test_a_gitflic_release_made_replaced_and_pruned_keeps_to_the_description(publish, forge, dist):
    assert publish(checksums="SHA256SUMS").code == 0
    (dist / "checksums.txt").write_text("changed\n")
    (dist / "tool-windows-amd64.zip").unlink()
    assert publish(checksums="SHA256SUMS", name="Tool", overwrite_files="true", remove_other_assets="true").code == 0

    assert contract.problems(forge.exchanges()) == []
    used = _operations_used(forge)
    for operation in (
        "GET /project/{ownerAlias}/{projectAlias}/release",
        "POST /project/{ownerAlias}/{projectAlias}/release",
        "PUT /project/{ownerAlias}/{projectAlias}/release/{releaseUuid}",
        "POST /project/{ownerAlias}/{projectAlias}/release/{releaseUuid}/file",
        "DELETE /project/{ownerAlias}/{projectAlias}/release/{releaseUuid}/file",
    ):
        assert f"gitflic {operation}" in used
    assert contract.unlisted(forge.exchanges()) == set()


# -- a changed answer fails it ----------------------------------------------------------------


def _size_as_number(answer: dict) -> dict:
    return {**answer, "attachment": {**answer["attachment"], "size": int(answer["attachment"]["size"])}}


def _notes_renamed(answer: dict) -> dict:
    answer = dict(answer)
    answer["notes"] = answer.pop("release_notes")
    return answer


def _sha256_renamed(answer: dict) -> dict:
    answer = dict(answer)
    answer["sha256"] = answer.pop("hashSha256")
    return answer


def _size_as_string(answer: dict) -> dict:
    return {**answer, "size": str(answer["size"])}


def _tag_left_out(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "tagName"}


def _tag_name_renamed(answer: dict) -> dict:
    answer = dict(answer)
    answer["tag"] = answer.pop("tag_name")
    return answer


CHANGES = {
    "sourcecraft size as a number": (sourcecraft, "_asset_json", _size_as_number, SC, "is not of type 'string'"),
    "sourcecraft field renamed": (sourcecraft, "_release_json", _notes_renamed, SC, "'notes' was unexpected"),
    "gitflic hash renamed": (gitflic, "_file_json", _sha256_renamed, {}, "'sha256' was unexpected"),
    "gitflic size as a string": (gitflic, "_file_json", _size_as_string, {}, "is not of type 'integer'"),
    "gitflic tag left out": (gitflic, "_release_json", _tag_left_out, {}, "'tagName' is a required property"),
    "gitea size as a string": (gitea, "_asset_json", _size_as_string, {"forge": "gitea"}, "is not of type 'integer'"),
    "gitea tag_name renamed": (gitea, "_release_json", _tag_name_renamed, {"forge": "gitea"}, "'tag' was unexpected"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_deliberate_change_to_one_sandbox_answer_fails_the_check(publish, forge, monkeypatch, change):
    module, function, alter, inputs, expected = CHANGES[change]
    original = getattr(module, function)
    monkeypatch.setattr(module, function, lambda *args: alter(original(*args)))
    publish(**inputs)

    problems = contract.problems(forge.exchanges())
    assert any(expected in problem for problem in problems), problems
    forge.state.exchanges.clear()  # shown here; the fixture would fail this test for it otherwise


def test_an_unlisted_status_and_a_wrong_error_shape_fail_the_check(publish, forge, monkeypatch):
    forge.state.settings.sourcecraft_create_status = 202
    publish(**SC)
    assert any(
        "answered 202, which the description does not list (it lists 200, 201 and errors)" in problem
        for problem in contract.problems(forge.exchanges())
    )
    forge.state.exchanges.clear()

    # The sandbox's errors once carried details as a list; the description says a map of strings.
    error = sourcecraft.SourceCraftApi.error
    monkeypatch.setattr(sourcecraft.SourceCraftApi, "error", lambda self, *args: _details_as_list(error(self, *args)))
    publish(**SC, tag_name="v9.9.9")
    assert any(
        ".details: [" in problem and "is not of type 'object'" in problem
        for problem in contract.problems(forge.exchanges())
    )
    forge.state.exchanges.clear()


def _details_as_list(reply):
    reply.body = {**reply.body, "details": [{"reason": "not_found"}]}
    return reply


# -- the program's requests are held to it ------------------------------------------------------


def _exchange(forge: str, method: str, path: str, **fields) -> Exchange:
    defaults = dict(
        query={},
        content_type="",
        sent_bytes=0,
        sent_json=NOTHING,
        sent_fields=None,
        status=None,
        body=None,
        fault=None,
        client=PROGRAM,
    )
    return Exchange(forge=forge, method=method, path=path, **{**defaults, **fields})


def _gitea_upload(*fields: str) -> Exchange:
    return _exchange(
        "gitea",
        "POST",
        "/repos/a/b/releases/1/assets",
        query={"name": ["x"]},
        content_type="multipart/form-data; boundary=x",
        sent_bytes=9,
        sent_fields=fields,
    )


REQUESTS = {
    "an operation it lacks": (_exchange("sourcecraft", "DELETE", "/repos/a/b/releases/tag/v1"), "does not list"),
    "a query parameter it lacks": (
        _exchange("sourcecraft", "GET", "/repos/a/b/releases", query={"per_page": ["5"]}),
        "'per_page'",
    ),
    "a query value of the wrong type": (
        _exchange("sourcecraft", "GET", "/repos/a/b/releases", query={"page_size": ["ten"]}),
        "'page_size'",
    ),
    "a JSON field it lacks": (
        _exchange(
            "sourcecraft",
            "POST",
            "/repos/a/b/releases",
            content_type="application/json",
            sent_bytes=30,
            sent_json={"tag": "v1", "prerelease": True},
        ),
        "'prerelease' was unexpected",
    ),
    "a JSON body without its content type": (
        _exchange("gitflic", "POST", "/project/a/b/release", content_type="text/plain", sent_bytes=2, sent_json={}),
        "not application/json",
    ),
    "a multipart field it lacks": (
        _exchange(
            "gitflic",
            "POST",
            "/project/a/b/release/1/file",
            content_type="multipart/form-data; boundary=x",
            sent_bytes=9,
            sent_fields=("file",),
        ),
        "field 'files' is missing",
    ),
    "a body where it takes none": (
        _exchange("sourcecraft", "POST", "/repos/a/b/releases/tag/v1/publish", sent_bytes=2),
        "takes none",
    ),
    "a Gitea upload in another part": (_gitea_upload("file"), "field 'attachment' is missing"),
    "a Gitea upload with its part twice": (_gitea_upload("attachment", "attachment"), "'attachment' is sent 2 times"),
    "a Gitea list with a draft filter that is not a boolean": (
        _exchange("gitverse", "GET", "/repos/a/b/releases", query={"draft": ["yes"]}),
        "'draft'",
    ),
}


@pytest.mark.parametrize("request_kind", sorted(REQUESTS))
def test_a_program_request_the_description_does_not_take_is_reported(request_kind):
    exchange, expected = REQUESTS[request_kind]
    problems = contract.problems([exchange])
    assert any(expected in problem for problem in problems), problems
    # Only the program's requests are held to it: a test poking the sandbox by hand is not.
    assert contract.problems([Exchange(**{**exchange.__dict__, "client": "python-requests/2"})]) == []


def test_gitflic_s_upload_takes_its_files_part_more_than_once():
    """Its page's key is 'files', for 'new files': the description marks it repeated (x-repeated)."""
    upload = _exchange(
        "gitflic",
        "POST",
        "/project/a/b/release/1/file",
        content_type="multipart/form-data; boundary=x",
        sent_bytes=9,
        sent_fields=("files",) * 10,
    )
    assert contract.problems([upload]) == []


def test_the_sandbox_page_names_every_request_beyond_the_descriptions():
    section = (ROOT / "docs" / "sandbox.md").read_text()
    for forge, operations in contract.BEYOND.items():
        for operation in operations:
            assert f"`{operation}`" in section, f"{forge} {operation} is not named in docs/sandbox.md"
    assert all(name in section for name in ("sourcecraft-swagger.json", "gitflic.json", "gitea-swagger.json"))


# -- the program reads what the vendor says it may get --------------------------------------------

FORMATS = {"int64": st.integers(-(1 << 63), (1 << 63) - 1).map(str), "uint64": st.integers(0, (1 << 64) - 1).map(str)}
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _answers(forge: str, definition: str):
    """Answers the forge's schema for ``definition`` allows, as (forge, definition, answer)."""
    schema = _bounded(contract.description(forge).schema(definition))
    return from_schema(schema, custom_formats=FORMATS).map(lambda answer: (forge, definition, answer))


def _bounded(node):
    """The schema with an int64 that is a JSON number (Gitea's) given its range, which the generator
    does not read from the format."""
    if isinstance(node, dict):
        node = {key: _bounded(value) for key, value in node.items()}
        if node.get("type") == "integer" and node.get("format") == "int64":
            node = {"minimum": -(1 << 63), "maximum": (1 << 63) - 1, **node}
        return node
    if isinstance(node, list):
        return [_bounded(item) for item in node]
    return node


def _client(forge: str):
    api_url = {
        "sourcecraft": "https://api.sourcecraft.tech",
        "gitflic": "https://api.gitflic.ru",
        "gitea": "https://git.example.org/api/v1",
        "gitverse": "https://api.gitverse.ru",
    }[forge]
    return connect(
        forge,
        api_url=api_url,
        token=TOKEN,
        repository=REPOSITORY,
        policy=RetryPolicy(attempts=1),
        timeout=5,
        ca_bundle=None,
    )


def _read_or_refuse(read, generated):
    """The answer fits the vendor's schema; reading it gives our data or one sentence, never a traceback."""
    forge, definition, answer = generated
    known = contract.description(forge)
    assert known.violations({"$ref": f"#/definitions/{definition}"}, answer, closed=False) == []
    try:
        return read(answer)
    except ForgeError as error:
        assert str(error).strip() and "\n" not in str(error), repr(str(error))
        return None


def _a_release(value) -> None:
    if value is not None:
        assert isinstance(value, Release) and all(isinstance(asset.size, int) for asset in value.assets)


@PROPERTY
@given(_answers("sourcecraft", "Release"))
def test_every_release_sourcecrafts_schema_allows_is_read_or_refused_in_one_sentence(generated):
    _a_release(_read_or_refuse(lambda answer: _client("sourcecraft")._release(answer, "v1.0.0"), generated))


@PROPERTY
@given(_answers("sourcecraft", "ReleaseAsset"))
def test_every_upload_answer_sourcecrafts_schema_allows_is_read_or_refused_in_one_sentence(generated):
    asset = _read_or_refuse(lambda answer: _client("sourcecraft")._asset(answer, "v1.0.0"), generated)
    assert asset is None or isinstance(asset.size, int)


@PROPERTY
@given(_answers("sourcecraft", "ApiErrorResponse"), st.sampled_from([400, 404, 409, 500]))
def test_every_error_sourcecrafts_schema_allows_is_described(generated, status):
    _, _, answer = generated
    assert isinstance(sourcecraft_error(answer, status), str)


def sourcecraft_error(answer, status: int) -> str:
    from release_action.forges.sourcecraft import SourceCraft

    return SourceCraft.describe_error(_response(answer, status))


@PROPERTY
@given(_answers("sourcecraft", "AttachmentDownloadable"))
def test_every_attachment_details_answer_gives_a_link_or_one_sentence(generated):
    asset = Asset(id="a", name="a.bin", size=1, url="", ref="/ref")
    link = _read_or_refuse(lambda answer: _client("sourcecraft")._link(answer, asset), generated)
    assert link is None or (isinstance(link, str) and link)


@PROPERTY
@given(_answers("gitflic", "ReleasePage"))
def test_every_page_of_releases_gitflics_documentation_allows_is_read_or_refused(generated):
    page = _read_or_refuse(_client("gitflic")._page, generated)
    if page is not None:
        assert page.number is None or page.number >= 0
        for _, release in page.releases:
            _a_release(release)


def test_a_gitflic_page_without_embedded_is_an_empty_page():
    page = _client("gitflic")._page({"page": {"size": 100, "totalElements": 0, "totalPages": 0, "number": 0}})
    assert (page.releases, page.number) == ([], 0)


@PROPERTY
@given(_answers("gitflic", "Release"))
def test_every_release_gitflics_documentation_allows_is_read_or_refused_in_one_sentence(generated):
    _a_release(_read_or_refuse(_client("gitflic")._release, generated))


@PROPERTY
@given(_answers("gitflic", "Error"), st.sampled_from([400, 403, 404, 500]))
def test_every_error_gitflics_documentation_allows_is_described(generated, status):
    from release_action.forges.gitflic import GitFlic

    _, _, answer = generated
    assert isinstance(GitFlic.describe_error(_response(answer, status)), str)


@PROPERTY
@given(_answers("gitea", "Release"), st.sampled_from(["gitea", "gitverse"]))
def test_every_release_gitea_s_schema_allows_is_read_or_refused_in_one_sentence(generated, forge_name):
    _a_release(_read_or_refuse(lambda answer: _client(forge_name)._release(answer, "v1.0.0"), generated))


@PROPERTY
@given(_answers("gitea", "Attachment"))
def test_every_upload_answer_gitea_s_schema_allows_is_read_or_refused_in_one_sentence(generated):
    asset = _read_or_refuse(lambda answer: _client("gitea")._asset(answer, "v1.0.0"), generated)
    assert asset is None or (isinstance(asset.size, int) and asset.id)


@PROPERTY
@given(from_schema(contract.GITEA_ERROR), st.sampled_from([400, 403, 404, 409, 422, 500]))
def test_every_error_gitea_answers_is_described(answer, status):
    from release_action.forges.gitea import Gitea
    from release_action.forges.gitverse import GitVerse

    for forge in (Gitea, GitVerse):
        assert isinstance(forge.describe_error(_response(answer, status)), str)


def _response(answer, status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if isinstance(answer, str):
        response._content, response.headers["Content-Type"] = answer.encode(), "text/plain; charset=utf-8"
    else:
        response._content, response.headers["Content-Type"] = json.dumps(answer).encode(), "application/json"
    response.encoding = "utf-8"
    return response


# -- answers the schemas allow, through the whole program ---------------------------------------
# Each changes one sandbox answer in a way the vendor's schema allows but the sandbox never sends;
# the exchanges are cleared after, as they break the sandbox's own contract on purpose.


def _one_sentence(run) -> str:
    errors = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "Traceback" not in run.log, run.log
    return errors[0]


@pytest.mark.parametrize("url", ["/_storage/relative", "ftp://example.org/x", "http://"])
def test_a_download_link_that_is_not_http_is_one_sentence(publish, forge, monkeypatch, url):
    original = sourcecraft.get_attachment

    def answer(*args, **kwargs):
        reply = original(*args, **kwargs)
        reply.body = {**reply.body, "url": url}
        return reply

    monkeypatch.setattr(sourcecraft, "get_attachment", answer)
    run = publish(**SC)
    assert run.code == 1 and "not an http(s) address" in _one_sentence(run)
    forge.state.exchanges.clear()


def test_sourcecraft_assets_without_ids_are_refused_and_never_uploaded_twice(publish, forge, monkeypatch):
    original = sourcecraft._asset_json

    def without_ids(stored):
        answer = original(stored)
        return {key: value for key, value in answer.items() if key != "id"} | {
            "attachment": {key: value for key, value in answer["attachment"].items() if key != "id"}
        }

    monkeypatch.setattr(sourcecraft, "_asset_json", without_ids)
    for _ in range(2):
        run = publish(**SC, retry_attempts="3")
        assert run.code == 1 and "without an id" in _one_sentence(run)
    [release] = forge.releases(REPOSITORY)
    names = [stored.name for stored in release.files]
    assert len(names) == len(set(names)), names
    forge.state.exchanges.clear()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"status": "discarded"}, "is discarded on SourceCraft"),
        ({"tag": "v2.0.0"}, "release v2.0.0 when asked for v1.0.0"),
    ],
)
def test_a_sourcecraft_release_in_another_state_or_for_another_tag_is_one_sentence(
    publish, forge, monkeypatch, change, expected
):
    assert publish(**SC).code == 0
    original = sourcecraft._release_json
    monkeypatch.setattr(sourcecraft, "_release_json", lambda *args: {**original(*args), **change})
    run = publish(**SC)
    assert run.code == 1 and expected in _one_sentence(run)
    forge.state.exchanges.clear()


def test_a_created_sourcecraft_release_whose_answer_leaves_out_its_status_is_still_published(
    publish, forge, monkeypatch
):
    original = sourcecraft._release_json
    monkeypatch.setattr(
        sourcecraft, "_release_json", lambda *args: {k: v for k, v in original(*args).items() if k != "status"}
    )
    assert publish(**SC).code == 0
    [release] = forge.releases(REPOSITORY)
    assert release.draft is False
    forge.state.exchanges.clear()


def test_a_gitflic_server_that_ignores_the_page_asked_for_is_read_once(publish, forge, monkeypatch):
    assert publish().code == 0
    original = gitflic.list_releases

    def first_page_always(request, **kwargs):
        request.query["page"] = ["0"]
        reply = original(request, **kwargs)
        reply.body["page"] = {**reply.body["page"], "totalPages": 10**9, "totalElements": 10**9}
        return reply

    monkeypatch.setattr(gitflic, "list_releases", first_page_always)
    forge.state.calls.clear()
    run = publish()
    assert run.code == 0, run.log
    lists = [path for method, path in forge.calls() if method == "GET" and path.endswith("/release")]
    assert 1 <= len(lists) <= 4, lists  # one listing per lookup, each stopped by the repeated page
    forge.state.exchanges.clear()


def test_a_gitflic_page_that_says_zero_pages_does_not_end_the_listing(publish, forge, monkeypatch):
    for tag in ("v1.0.0", "v1.1.0", "v2.0.0"):
        assert publish(tag_name=tag).code == 0
    forge.state.settings.page_size_cap = 1  # newest first: v1.0.0 is on the last page
    original = gitflic.list_releases

    def zero_pages(request, **kwargs):
        reply = original(request, **kwargs)
        reply.body["page"] = {**reply.body["page"], "totalPages": 0}
        return reply

    monkeypatch.setattr(gitflic, "list_releases", zero_pages)
    run = publish(tag_name="v1.0.0")
    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert len(forge.releases(REPOSITORY)) == 3
    forge.state.exchanges.clear()


def test_the_oldest_gitflic_release_for_a_tag_is_found_by_its_instant_not_its_spelling(publish, forge):
    forge.state.settings.allow_duplicate_tags = True
    assert publish().code == 0
    assert publish(tag_name="v1.1.0").code == 0
    first, second = forge.releases(REPOSITORY)
    second.tag = first.tag
    # Java prints 0 to 9 digits of a second: as text, the newer one sorts first.
    first.created_at, second.created_at = "2024-05-17T09:59:30.635Z", "2024-05-17T09:59:30.635513Z"
    run = publish()
    assert run.code == 0, run.log
    assert run.json["release_id"] == first.id
