"""Where a credential may go: one rule (transport.CredentialRule) on every request, and a token the CI
put in the environment only for that CI's own server.

The autouse check in conftest.py (``credentials``) fails any test in which a credential reached the
sandbox's other origin, where these hostile links lead; the tests here make the links lead there.
"""

from __future__ import annotations

import pytest
from conftest import FORGE_NAMES, REPOSITORY, TOKEN, assert_no_token

from release_action.cli import main
from release_action.sandbox.state import Fault

#: The forges whose check of a stored file downloads it through a link the forge hands out.
LINK_FORGES = ("sourcecraft", "gitverse")


def only_error(run) -> str:
    errors = [line for line in run.log.splitlines() if line.startswith(("Error:", "::error::"))]
    assert len(errors) == 1, run.log
    return errors[0]


@pytest.mark.parametrize("form", ["foreign", "backslash", "userinfo"])
@pytest.mark.parametrize("forge_name", FORGE_NAMES)
def test_download_links_that_lead_elsewhere_never_get_the_token(publish, forge, forge_name, form):
    """The forge's links point to another origin, plainly or by a parser trick (urlsplit reads the host
    after a backslash's '@', urllib3 connects to the one before it); the files still verify, fetched
    without the token, and the sandbox's other origin saw no credential (checked by the fixture)."""
    forge.state.settings.download_links = form
    run = publish(forge=forge_name)
    assert run.code == 0, run.log
    if forge_name in LINK_FORGES and form != "userinfo":  # these downloaded through the links: the check saw them
        assert forge.state.foreign_paths, "no download went to the other origin"


@pytest.mark.parametrize("forge_name", LINK_FORGES)
def test_a_download_link_that_cannot_be_parsed_is_one_sentence(publish, forge, forge_name):
    forge.state.settings.download_links = "unparseable"
    run = publish(forge=forge_name)
    assert run.code == 1 and "Traceback" not in run.log, run.log
    assert "cannot be read as an address" in only_error(run)


def test_a_download_redirected_to_another_origin_goes_without_the_token(publish, forge):
    """Gitea serves a private repository's files on its web side with the token; a redirect from there
    to another origin is judged by the same rule, and the file comes without it."""
    forge.inject(Fault("web_redirect", "GET", "attachments/", times=1000, location=forge.foreign_url))
    run = publish(forge="gitea")
    assert run.code == 0, run.log
    assert forge.state.foreign_paths, "no download was redirected"


def _gitea_actions(server: str, **more: str) -> dict[str, str]:
    return {
        "GITEA_ACTIONS": "true",
        "GITHUB_SERVER_URL": server,
        "GITHUB_API_URL": f"{server}/api/v1",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "v1.0.0",
        **more,
    }


def test_the_job_token_of_gitea_actions_goes_to_its_own_server(publish, forge):
    """Without input 'token', the runner's GITEA_TOKEN is used: api_url is the runner's own server."""
    run = publish(forge="gitea", token="", api_url="", env=_gitea_actions(forge.url, GITEA_TOKEN=TOKEN))
    assert run.code == 0, run.log


@pytest.mark.parametrize("variable", ["GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN"])
def test_the_job_token_of_one_server_never_goes_to_another(publish, forge, variable):
    """A misspelt or missing secret leaves input 'token' empty; api_url names another server than the
    runner's: the runner's token belongs to its own, so the run stops before any request, dry run or not."""
    for dry_run in ("false", "true"):
        run = publish(
            forge="gitea",
            token="",
            dry_run=dry_run,
            env=_gitea_actions("https://gitea.example.test", **{variable: TOKEN}),
        )
        assert run.code == 2, run.log
        assert f"the job token in {variable} belongs to https://gitea.example.test/api/v1" in only_error(run)
    assert forge.calls() == [] and forge.state.credentials == []


def test_gitflic_ci_s_job_token_goes_only_to_its_own_instance(publish, forge):
    ci = {
        "CI_SERVER_REST_URL": "https://gitflic.example.test/rest-api",
        "CI_JOB_TOKEN": TOKEN,
        "CI_PROJECT_NAMESPACE": "acme",
        "CI_PROJECT_NAME": "tool",
        "CI_COMMIT_TAG": "v1.0.0",
    }
    run = publish(forge="gitflic", token="", env=ci)
    assert run.code == 2, run.log
    assert "CI_JOB_TOKEN belongs to https://gitflic.example.test/rest-api" in only_error(run)
    assert forge.calls() == []

    forge.add_job_token(REPOSITORY, "job-token-5e1f")
    ci.update(CI_SERVER_REST_URL=forge.api_url("gitflic"), CI_JOB_TOKEN="job-token-5e1f")
    run = publish(forge="gitflic", token="", env=ci, retry_attempts="1")
    # Its own instance got it (where the sandbox, like GitFlic, lets a job token read but not create a release).
    assert any("job-token-5e1f" in header for _, header in forge.state.credentials)
    assert run.code == 1 and "with the CI job token (CI_JOB_TOKEN)" in only_error(run), run.log


def test_a_server_whose_name_contains_gitverse_is_not_gitverse(forge, dist, tmp_path, capsys):
    """Gitea at gitverse-lab.corp is detected as Gitea: its token goes to it, not to api.gitverse.ru."""
    environ = {
        **_gitea_actions("https://gitverse-lab.corp"),
        "GITHUB_API_URL": "https://gitverse-lab.corp/api/v1",
        "INPUT_TOKEN": TOKEN,
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_DRY_RUN": "true",
        "INPUT_RETRY_ATTEMPTS": "1",
        "INPUT_TIMEOUT_SECONDS": "2",
    }
    code = main([], environ)
    log = capsys.readouterr()
    assert "api.gitverse.ru" not in log.out + log.err
    assert "Gitea" in log.out + log.err and code == 1
    assert_no_token(log.out, log.err)


@pytest.mark.parametrize(
    "environ, forge_name",
    [
        ({"GITHUB_SERVER_URL": "https://gitverse.ru"}, "gitverse"),
        ({"GITHUB_SERVER_URL": "https://ci.gitverse.ru"}, "gitverse"),
        ({"GITHUB_SERVER_URL": "https://gitverse.ru.evil.test"}, "gitflic"),
        ({"GITHUB_SERVER_URL": "https://mygitverse.ru"}, "gitflic"),
        # Gitea's runner naming its own API wins over a server URL that says GitVerse.
        (
            {
                "GITEA_ACTIONS": "true",
                "GITHUB_SERVER_URL": "https://gitverse.ru",
                "GITHUB_API_URL": "https://gitea.corp/api/v1",
            },
            "gitea",
        ),
        ({"CI_SERVER_URL": "https://gitflic.ru"}, "gitflic"),
        ({"CI_SERVER_URL": "https://notgitflic.ru", "INPUT_API_URL": "https://api.gitverse.ru"}, "gitverse"),
    ],
)
def test_ci_and_forge_are_detected_by_exact_hosts(environ, forge_name):
    from release_action.inputs import _detect_forge

    assert _detect_forge(environ, environ.get("INPUT_API_URL")) == forge_name
