"""Secrets and transport: TLS always verified, a private CA by input or REQUESTS_CA_BUNDLE,
the token kept to the forge's own host, and out of every line the program writes."""

from __future__ import annotations

import pytest
from conftest import REPOSITORY, TOKEN, assert_no_token, run_program

from release_action.sandbox.server import Sandbox
from release_action.sandbox.state import Fault


def _env(forge: Sandbox, dist, **extra: str) -> dict[str, str]:
    return {
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_RETRY_ATTEMPTS": "1",
        **extra,
    }


def test_an_unknown_certificate_is_refused_in_one_sentence(tls_forge, dist):
    result = run_program(_env(tls_forge, dist))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "TLS verification of 127.0.0.1" in output and "ca_bundle" in output
    assert tls_forge.calls() == [], "nothing was sent over an unverified connection"


def test_a_private_ca_is_trusted_through_the_ca_bundle_input(tls_forge, dist, certificate):
    # REQUESTS_CA_BUNDLE points elsewhere, as on many CI machines: the input must still win.
    result = run_program(
        _env(
            tls_forge,
            dist,
            INPUT_CA_BUNDLE=str(certificate[0]),
            REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
        )
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(tls_forge.releases(REPOSITORY)[0].files) == 3


def test_requests_ca_bundle_is_honoured(tls_forge, dist, certificate):
    result = run_program(_env(tls_forge, dist, REQUESTS_CA_BUNDLE=str(certificate[0])))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_token_is_not_sent_where_the_forge_redirects(publish, forge):
    with Sandbox() as elsewhere:
        elsewhere.add_project(REPOSITORY, ["v1.0.0"], TOKEN)
        forge.inject(Fault("redirect", "GET", "", location=elsewhere.url))

        run = publish()

        assert run.code == 1
        assert "redirected" in run.log and elsewhere.url in run.log
        assert elsewhere.calls() == [], "no request, so no token, reached the other host"


def test_a_crash_prints_a_traceback_without_the_token(publish, monkeypatch):
    from release_action import outputs

    def crash(*args, **kwargs):
        raise RuntimeError(f"unexpected state while holding {TOKEN}")

    monkeypatch.setattr(outputs, "write", crash)  # a bug in our own code, after a real publish
    run = publish()

    assert run.code == 70
    assert "Internal error" in run.log and "RuntimeError" in run.log
    assert "unexpected state while holding ***" in run.log  # assert_no_token ran inside publish() too


@pytest.mark.parametrize("name", ["bell\x07.zip", "line\nbreak.zip", "back\\slash.zip"])
def test_a_file_name_the_forge_would_refuse_is_named_before_any_request(publish, forge, dist, name):
    (dist / name).write_bytes(b"data")
    run = publish(files=name.replace("\\", "[\\\\]") if "\\" in name else name.replace("\n", "?"))

    assert run.code == 2, run.log
    assert "rename it" in run.log
    assert forge.calls() == []


def test_every_line_is_checked_for_the_token(publish, forge):
    """The harness checks each run's log and output files; this run makes sure that check can fail."""
    with pytest.raises(AssertionError, match="the token leaked"):
        assert_no_token(f"something {TOKEN} something")
