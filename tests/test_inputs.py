"""Inputs: one manifest, several front doors, the CI context, and parsing that never surprises."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_action import manifest
from release_action.artifacts import expand, split_patterns
from release_action.errors import InputError
from release_action.inputs import parse_boolean, parser, resolve

BASE = {"INPUT_TOKEN": "t0k3n-value", "INPUT_REPOSITORY": "acme/tool", "INPUT_TAG_NAME": "v1"}


def _resolve(env: dict[str, str], *argv: str):
    secrets: list[str] = []
    return resolve(list(argv), env, on_secret=secrets.append), secrets


def test_every_manifest_input_is_a_flag_and_a_variable_in_help():
    help_text = parser().format_help()
    for spec in manifest.load().inputs.values():
        assert spec.flag in help_text
        assert spec.env_var in help_text


def test_flags_win_over_variables_which_win_over_defaults():
    inputs, _ = _resolve({**BASE, "INPUT_TAG_NAME": "from-env"}, "--tag-name", "from-flag")
    assert inputs.tag_name == "from-flag"
    inputs, _ = _resolve(BASE)
    assert inputs.tag_name == "v1"
    assert inputs.api_url == "https://api.gitflic.ru"  # the forge's default
    assert inputs.retry.attempts == int(manifest.load().inputs["retry_attempts"].default)


def test_the_token_is_reported_as_a_secret_and_hidden_from_repr():
    inputs, secrets = _resolve(BASE)
    assert secrets == ["t0k3n-value"]
    assert "t0k3n-value" not in repr(inputs)


def test_the_tag_comes_from_a_github_tag_push():
    env = {k: v for k, v in BASE.items() if k != "INPUT_TAG_NAME"}
    inputs, _ = _resolve({**env, "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v2.3.4"})
    assert inputs.tag_name == "v2.3.4"
    with pytest.raises(InputError, match="tag_name"):
        _resolve({**env, "GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": "main"})


def test_gitflic_ci_provides_token_repository_api_and_tag():
    inputs, secrets = _resolve(
        {
            "CI_SERVER_REST_URL": "https://git.example.ru/rest-api",
            "CI_JOB_TOKEN": "job-token-1",
            "CI_PROJECT_NAMESPACE": "team",
            "CI_PROJECT_NAME": "service",
            "CI_COMMIT_TAG": "v3.0.0",
        }
    )
    assert (inputs.forge, inputs.api_url, inputs.repository, inputs.tag_name) == (
        "gitflic",
        "https://git.example.ru/rest-api",
        "team/service",
        "v3.0.0",
    )
    assert inputs.token == "job-token-1" and secrets == ["job-token-1"]


def test_a_personal_token_variable_wins_over_the_job_token():
    inputs, _ = _resolve(
        {
            **BASE,
            "INPUT_TOKEN": "",
            "GITFLIC_TOKEN": "personal-1",
            "CI_JOB_TOKEN": "job-1",
            "CI_SERVER_REST_URL": "https://git.example.ru/rest-api",
        }
    )
    assert inputs.token == "personal-1"


def test_empty_variables_count_as_unset_as_github_passes_them():
    inputs, _ = _resolve({**BASE, "INPUT_NAME": "", "INPUT_PRERELEASE": "", "INPUT_API_URL": ""})
    assert (inputs.name, inputs.prerelease, inputs.api_url) == (None, None, "https://api.gitflic.ru")


def test_a_misspelt_input_variable_is_named_with_its_right_spelling():
    with pytest.raises(InputError) as error:
        _resolve({**BASE, "INPUT_TAGNAME": "v1", "INPUT_UNRELATED_THING": "x"})
    assert str(error.value).startswith("INPUT_TAGNAME is not an input of this action, and INPUT_TAG_NAME (tag_name) is")


def test_an_input_variable_like_no_input_is_left_alone():
    inputs, _ = _resolve({**BASE, "INPUT_UNRELATED_THING": "x", "INPUT_": "y", "input_": "z"})
    assert inputs.tag_name == "v1"


def test_a_boolean_flag_alone_means_true():
    inputs, _ = _resolve(BASE, "--dry-run")
    assert inputs.dry_run is True


@given(
    st.sampled_from(["true", "yes", "1", "false", "no", "0"]),
    st.lists(st.booleans(), min_size=1, max_size=5),
    st.text(" \t", max_size=2),
)
def test_booleans_accept_their_words_in_any_case(word, upper, pad):
    cased = "".join(ch.upper() if flip else ch for ch, flip in zip(word, upper * len(word), strict=False))
    assert parse_boolean(pad + cased + pad, "x") is (word in ("true", "yes", "1"))


@given(st.text(max_size=8).filter(lambda w: w.strip().lower() not in {"true", "yes", "1", "false", "no", "0"}))
def test_anything_else_is_an_error_naming_the_input(word):
    with pytest.raises(InputError, match="'verify'"):
        parse_boolean(word, "verify")


PATTERN = st.from_regex(r"[a-z*?!][a-z0-9*?./_-]{0,10}", fullmatch=True)


@given(st.lists(PATTERN, max_size=6), st.sampled_from([",", "\n", ", ", "\n\n"]))
def test_patterns_split_the_same_on_commas_and_lines(patterns, separator):
    patterns = [p for p in patterns if p.strip()]
    assert split_patterns(separator.join(patterns)) == patterns


NAMES = st.lists(st.from_regex(r"[a-z]{1,6}\.(zip|tgz|txt)", fullmatch=True), min_size=1, max_size=8, unique=True)


@given(NAMES, st.sampled_from(["zip", "tgz", "txt"]))
def test_an_exclusion_removes_exactly_what_it_matches(tmp_path_factory, names, excluded):
    root = tmp_path_factory.mktemp("files")
    for name in names:
        (root / name).write_text(name)
    artifacts, _ = expand(["*", f"!*.{excluded}"], root, fail_on_unmatched=False)
    assert sorted(a.name for a in artifacts) == sorted(n for n in names if not n.endswith("." + excluded))


@pytest.mark.parametrize(
    "include, exclude",
    [
        ("dist/*", "!dist/secret.zip"),
        ("./dist/*", "!dist/secret.zip"),
        ("dist/*", "!./dist/secret.zip"),
        ("dist/*", "!{root}/dist/secret.zip"),
        ("{root}/dist/*", "!dist/secret.zip"),
        ("dist/*.{{zip,gz}}", "!**/secret.*"),
        ("dist/**", "!dist/{{secret,other}}.zip"),
    ],
)
def test_an_exclusion_holds_however_the_path_is_spelled(tmp_path: Path, monkeypatch, include, exclude):
    (tmp_path / "dist").mkdir()
    for name in ("app.zip", "app.tar.gz", "secret.zip"):
        (tmp_path / "dist" / name).write_text(name)
    monkeypatch.chdir(tmp_path)
    patterns = [pattern.format(root=tmp_path) for pattern in (include, exclude)]
    artifacts, _ = expand(patterns, Path("."), fail_on_unmatched=True)
    assert sorted(a.name for a in artifacts) == ["app.tar.gz", "app.zip"]


@given(NAMES)
def test_recursive_patterns_find_files_at_any_depth_once(tmp_path_factory, names):
    root = tmp_path_factory.mktemp("tree")
    for depth, name in enumerate(names):
        folder = root.joinpath(*[f"d{i}" for i in range(depth % 4)])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    artifacts, _ = expand(["**/*", "**/*.zip"], root, fail_on_unmatched=False)
    assert sorted(a.name for a in artifacts) == sorted(names)


def test_patterns_may_be_absolute(tmp_path: Path):
    (tmp_path / "a.zip").write_text("a")
    artifacts, _ = expand([str(tmp_path / "*.zip")], Path("."), fail_on_unmatched=True)
    assert [a.path for a in artifacts] == [tmp_path / "a.zip"]


def test_the_manifest_is_the_one_list_of_inputs_the_program_reads():
    """action.yml and the Inputs dataclass name the same settings (body_path and files feed body and patterns)."""
    from dataclasses import fields

    from release_action.inputs import Inputs

    renamed = {
        "body_path": "body",
        "files": "patterns",
        "retry_attempts": "retry",
        "retry_max_seconds": "retry",
        "retry_wait_seconds": "retry",
        "signing_key": "signing",
        "signing_passphrase": "signing",
        "signing_format": "signing",
        "sign_files": "signing",
    }
    program = {f.name for f in fields(Inputs)}
    for name in manifest.load().inputs:
        assert renamed.get(name, name) in program, f"action.yml input {name} is not read by the program"
    assert re.fullmatch(r"[a-z_]+", "".join(manifest.load().inputs)), "input names are lower_snake_case"


def test_sourcecraft_ci_provides_forge_token_repository_and_tag():
    inputs, secrets = _resolve(
        {
            "SOURCECRAFT_CI": "true",
            "SOURCECRAFT_TOKEN": "sc-token-1",
            "SOURCECRAFT_REPO_URL": "https://sourcecraft.dev/team/service.git",
            "SOURCECRAFT_COMMIT_REF": "refs/tags/v4.1.0",
            "SOURCECRAFT_COMMIT_REF_NAME": "v4.1.0",
        }
    )
    assert (inputs.forge, inputs.api_url, inputs.repository, inputs.tag_name) == (
        "sourcecraft",
        "https://api.sourcecraft.tech",
        "team/service",
        "v4.1.0",
    )
    assert secrets == ["sc-token-1"]


def test_a_sourcecraft_branch_build_has_no_tag():
    with pytest.raises(InputError, match="tag_name"):
        _resolve(
            {
                "SOURCECRAFT_CI": "true",
                "SOURCECRAFT_TOKEN": "t",
                "SOURCECRAFT_REPO_URL": "https://sourcecraft.dev/a/b",
                "SOURCECRAFT_COMMIT_REF": "refs/heads/main",
                "SOURCECRAFT_COMMIT_REF_NAME": "main",
            }
        )


def test_the_forge_is_recognised_from_the_api_address():
    inputs, _ = _resolve({**BASE, "INPUT_API_URL": "https://api.sourcecraft.tech"})
    assert inputs.forge == "sourcecraft"


def test_the_manifest_names_exactly_the_outputs_the_program_writes():
    from release_action.forges import Release
    from release_action.outputs import values
    from release_action.publish import Result

    written = values(Result(Release("id", "v1", "t", "", False, "url"), [], 0))
    assert set(written) == set(manifest.load().outputs)


# -- Gitea and Forgejo Actions, GitVerse CI ---------------------------------------------------------


def test_gitea_actions_provide_forge_address_repository_token_and_tag():
    inputs, secrets = _resolve(
        {
            "GITHUB_ACTIONS": "true",
            "GITEA_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://git.example.org",
            "GITHUB_API_URL": "https://git.example.org/api/v1",
            "GITHUB_REPOSITORY": "team/service",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": "v5.0.0",
            "GITEA_TOKEN": "gitea-job-token",
        }
    )
    assert (inputs.forge, inputs.api_url, inputs.repository, inputs.tag_name, inputs.token) == (
        "gitea",
        "https://git.example.org/api/v1",
        "team/service",
        "v5.0.0",
        "gitea-job-token",
    )
    assert secrets == ["gitea-job-token"]


def test_forgejo_actions_are_gitea_s_dialect_with_forgejo_s_own_variables():
    inputs, _ = _resolve(
        {
            "GITHUB_ACTIONS": "true",
            "GITEA_ACTIONS": "true",
            "FORGEJO_ACTIONS": "true",
            "FORGEJO_SERVER_URL": "https://codeberg.org",
            "FORGEJO_REPOSITORY": "team/service",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": "v5.0.1",
            "FORGEJO_TOKEN": "forgejo-job-token",
        }
    )
    assert (inputs.forge, inputs.api_url, inputs.repository, inputs.token) == (
        "gitea",
        "https://codeberg.org/api/v1",
        "team/service",
        "forgejo-job-token",
    )


def test_gitverse_ci_is_told_by_its_server_and_gives_the_tag_s_commit():
    sha = "ab" * 20
    inputs, _ = _resolve(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://gitverse.ru",
            "GITHUB_REPOSITORY": "team/service",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": "v6.0.0",
            "GITHUB_SHA": sha,
            "INPUT_TOKEN": "gv-token",
        }
    )
    assert (inputs.forge, inputs.api_url, inputs.repository, inputs.tag_name, inputs.target_branch) == (
        "gitverse",
        "https://api.gitverse.ru",
        "team/service",
        "v6.0.0",
        sha,
    )
    other, _ = _resolve(
        {
            "GITHUB_SERVER_URL": "https://gitverse.ru",
            "GITHUB_REPOSITORY": "team/service",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": "v6.0.0",
            "GITHUB_SHA": sha,
            "INPUT_TOKEN": "gv-token",
            "INPUT_TAG_NAME": "v5.9.0",
        }
    )
    assert other.target_branch is None, "the run's commit is the commit of its own tag only"


def test_github_actions_elsewhere_are_not_taken_for_gitea():
    inputs, _ = _resolve(
        {
            **BASE,
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "someone/else",
        }
    )
    assert (inputs.forge, inputs.repository) == ("gitflic", "acme/tool")


@pytest.mark.parametrize(
    "api_url, forge",
    [
        ("https://git.example.org/api/v1", "gitea"),
        ("https://codeberg.org/api/v1/", "gitea"),
        ("https://api.gitverse.ru", "gitverse"),
    ],
)
def test_the_gitea_dialect_is_recognised_from_the_api_address(api_url, forge):
    inputs, _ = _resolve({**BASE, "INPUT_API_URL": api_url})
    assert inputs.forge == forge


def test_gitea_without_an_address_is_one_sentence():
    with pytest.raises(InputError, match=r"Input 'api_url' is empty, and Gitea has no public server"):
        _resolve({**BASE, "INPUT_FORGE": "gitea"})


@pytest.mark.parametrize("name", ["forgejo", "Codeberg", "gitea"])
def test_forgejo_and_codeberg_are_names_for_gitea_s_dialect(name):
    inputs, _ = _resolve({**BASE, "INPUT_FORGE": name, "INPUT_API_URL": "https://codeberg.org/api/v1"})
    assert inputs.forge == "gitea"


@pytest.mark.parametrize("planted", ['{"inputs": []}', '{"inputs": {"forge": {}}}', "[]", "{", ""])
def test_a_cached_manifest_of_another_shape_is_read_anew_and_written_again(tmp_path, monkeypatch, planted):
    """The parse of action.yml is cached beside the compiled modules; a cache this code did not write
    (another version's, a damaged one) is parsed anew, never a traceback, and replaced."""
    home = tmp_path / "release_action"
    home.mkdir()
    text = (Path(manifest.__file__).parent / "action.yml").read_text(encoding="utf-8")
    (home / "action.yml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(manifest, "__file__", str(home / "manifest.py"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    expected = manifest.parse(text)
    assert manifest.load.__wrapped__() == expected
    [cache] = (home / "__pycache__").glob("action.yml.*.json")
    cache.write_text(planted, encoding="utf-8")

    assert manifest.load.__wrapped__() == expected
    assert set(json.loads(cache.read_text(encoding="utf-8"))["inputs"]) == set(expected.inputs)
    assert [path.name for path in (home / "__pycache__").iterdir()] == [cache.name]
