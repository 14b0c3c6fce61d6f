"""The sandbox's contract: what the program sends and what the sandbox answers, held to each
forge's own API description.

SourceCraft's is the vendor's Swagger export (``descriptions/sourcecraft-swagger.json``,
December 2025, verbatim). GitFlic publishes none, so ``descriptions/gitflic.json`` is written
in the same form from its documentation page, field by field. Gitea's (``gitea-swagger.json``)
is the release part of Gitea's own, copied verbatim with everything it references; GitVerse,
which speaks Gitea's dialect and publishes no description, is held to it too, with its
documented departures. Checked for each exchange:

- the operation (method and path) is in the description, or in ``BEYOND`` with the evidence
  that the real forge answers it;
- the program's query parameters, content type, multipart field names and JSON body are the
  operation's own (a request from anything else, a test poking the sandbox, is not the program's);
- the status is one the operation lists (errors: its ``default``), or one the vendor's pages
  document where they disagree with the description (``ALSO_DOCUMENTED``);
- the answer's body fits the schema: types, formats (an int64 carried as a string), enums,
  required fields. The sandbox may send no property the description lacks, save those the live
  API is known to have added (``LIVE_EXTRAS``): so a renamed field fails too. The program, for
  its part, must read answers with any extra field (``tests/test_contract.py``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from .state import NOTHING, Exchange

PROGRAM_AGENT = "release-action/"
DESCRIPTIONS = {
    "sourcecraft": "sourcecraft-swagger.json",
    "gitflic": "gitflic.json",
    "gitea": "gitea-swagger.json",
    "gitverse": "gitea-swagger.json",
}
#: Faults whose answer is not the forge's (a dropped connection, a redirect): nothing to hold it to.
NO_ANSWER = {"reset", "reset_mid_body", "redirect", "proxy"}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    #: Query parameters: name -> the schema of its value.
    query: dict[str, dict] = field(default_factory=dict)
    #: The JSON body's schema, or the multipart fields (required, all), or neither.
    body: dict | None = None
    form: tuple[frozenset[str], frozenset[str]] | None = None
    #: Multipart fields that may come more than once (``x-repeated``: GitFlic's ``files``).
    repeated: frozenset[str] = frozenset()
    #: Status -> the answer's schema (None: a body that is not JSON, or none).
    responses: dict[int, dict | None] = field(default_factory=dict)
    errors: dict | None = None
    #: For an operation beyond the description: why it is believed to work.
    evidence: str = ""

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", self.template)
        return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$")

    @property
    def literal_length(self) -> int:
        """How much of the path is fixed: ``/release/latest`` is a better match than ``/release/{id}``."""
        return len(re.sub(r"\{[^}]+\}", "", self.template))

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


#: Requests the program sends that the descriptions do not list, with the evidence that the real
#: forge answers them. docs/sandbox.md names each one.
BEYOND: dict[str, tuple[Operation, ...]] = {
    "sourcecraft": (
        Operation(
            "PATCH",
            "/repos/{org_slug}/{repo_slug}/releases/tag/{release_tag}",
            body={"type": "object", "properties": {"title": {"type": "string"}, "release_notes": {"type": "string"}}},
            responses={200: {"$ref": "#/definitions/Release"}},
            errors={"$ref": "#/definitions/ApiErrorResponse"},
            evidence="seen: public code that publishes to SourceCraft updates a release's title and notes this way"
            " (PATCH by id answers 404)",
        ),
        Operation(
            "GET",
            "/repos/{org_slug}/{repo_slug}/releases/tag/{release_tag}/attachments/{attachment_id}",
            responses={200: {"$ref": "#/definitions/AttachmentDownloadable"}},
            errors={"$ref": "#/definitions/ApiErrorResponse"},
            evidence="doc: the vendor's reference pages, newer than the snapshot: an attachment's details with a"
            " presigned download url valid about a minute, the snapshot's own AttachmentDownloadable"
            " (its issue and pull-request attachments answer so)",
        ),
    ),
    "gitflic": (),
    "gitea": (),
    "gitverse": (),
}
#: Gitea's description gives its error answers no schema: go-swagger wrote APIError's fields
#: ``message`` and ``url`` as headers of the ``error`` response, and ``notFound`` as empty. Gitea
#: answers every API error with that JSON (``errors`` too, on a 404) [doc: its code,
#: services/context/api.go]; so its error answers are held to this, and ``empty`` to no body.
GITEA_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "url": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}
ERRORS = {"gitea": GITEA_ERROR, "gitverse": GITEA_ERROR}
#: Error statuses a forge answers with an empty body: GitVerse, to a request without its Accept header [doc].
EMPTY_ERRORS = {"gitverse": {400}}
#: Properties the live API is known to send that the description lacks: the vendor's page for the
#: upload (shared/api/000_…) shows an asset's ``archive_link``, a CodeArchive ``{archive_type: tar_gz, link}``.
LIVE_EXTRAS = {
    "sourcecraft": {
        "ReleaseAsset": {
            "archive_link": {
                "type": "object",
                "properties": {"archive_type": {"type": "string", "enum": ["tar_gz"]}, "link": {"type": "string"}},
            }
        },
    },
    "gitflic": {},
    "gitea": {},
    "gitverse": {},
}
#: Fields the sandbox always sends, beyond what the description requires (SourceCraft's requires
#: nothing: protobuf's JSON may leave out any field). Ours, not the vendor's: they keep a renamed or
#: dropped field from passing unseen. The program copes without them (tests/test_contract.py).
SANDBOX_SENDS = {
    "sourcecraft": {
        "Release": ["id", "tag", "status"],
        "ReleaseAsset": ["id", "name", "attachment"],
        "Attachment": ["id", "name", "size"],
        "AttachmentDownloadable": ["id", "size", "url"],
        "ApiErrorResponse": ["error_code", "message", "request_id"],
    },
    "gitflic": {},
    # Gitea's structs carry every field (Go has no absent field); these are the ones the program reads.
    "gitea": {
        "Release": ["id", "tag_name", "name", "body", "draft", "prerelease", "assets", "html_url"],
        "Attachment": ["id", "name", "size", "uuid", "browser_download_url"],
        "Tag": ["name", "commit"],
    },
}
SANDBOX_SENDS["gitverse"] = SANDBOX_SENDS["gitea"]
#: Statuses the vendor's pages document where the description says otherwise: the program takes both.
ALSO_DOCUMENTED = {
    "sourcecraft": {("POST", "/repos/{org_slug}/{repo_slug}/releases"): {201: 200}},
    "gitflic": {},
    "gitea": {},
    "gitverse": {},
}


class Description:
    """One forge's operations and schemas, read from its description file."""

    def __init__(self, forge: str, document: dict):
        self.forge = forge
        definitions = _without_null_properties(document.get("definitions", {}))
        #: As the vendor wrote them (extra properties allowed), and closed for the sandbox's answers.
        self.definitions = definitions
        self.closed_definitions = _closed(definitions, LIVE_EXTRAS[forge], SANDBOX_SENDS[forge])
        self.operations = [*_operations(document, ERRORS.get(forge)), *BEYOND[forge]]
        self.also_documented = ALSO_DOCUMENTED[forge]

    def operation(self, method: str, path: str) -> Operation | None:
        matching = [op for op in self.operations if op.method == method and op.pattern.match(path)]
        return max(matching, key=lambda op: op.literal_length, default=None)

    def schema(self, name: str) -> dict:
        """A named definition, whole, for generating answers from it (open: extra properties allowed)."""
        return {"$ref": f"#/definitions/{name}", "definitions": self.definitions}

    def violations(self, schema: dict, instance: Any, *, closed: bool = True) -> list[str]:
        """Why ``instance`` does not fit ``schema`` (empty when it does)."""
        validator = _validator(self.forge, json.dumps(schema, sort_keys=True), closed)
        errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        return [f"{_where(error)}: {_short(error.message)}" for error in errors[:3]]

    def problems(self, exchange: Exchange) -> list[str]:
        """Everything in one exchange that the description does not allow, as sentences."""
        found: list[str] = []
        program = exchange.client.startswith(PROGRAM_AGENT)
        operation = self.operation(exchange.method, exchange.path)
        if operation is None:
            if program:
                found.append("the program sent a request the description does not list")
            return [f"{self.forge} {exchange.method} {exchange.path}: {problem}" for problem in found]
        if program:
            found += self._request_problems(operation, exchange)
        found += self._answer_problems(operation, exchange)
        return [f"{self.forge} {exchange.method} {exchange.path} ({operation}): {problem}" for problem in found]

    def _request_problems(self, operation: Operation, exchange: Exchange) -> list[str]:
        found = []
        for name, values in exchange.query.items():
            if name not in operation.query:
                found.append(f"query parameter '{name}' is not the operation's")
                continue
            for value in values:
                found += [
                    f"query parameter '{name}' {why}"
                    for why in self.violations(operation.query[name], _query_value(operation.query[name], value))
                ]
        media = exchange.content_type.split(";")[0].strip().lower()
        if operation.form is not None:
            required, known = operation.form
            if media != "multipart/form-data":
                found.append(f"sent {media or 'no content type'}, not multipart/form-data")
            if exchange.sent_fields is not None:  # None: a fault struck before the body was read
                fields = set(exchange.sent_fields)
                found += [f"multipart field '{name}' is missing" for name in sorted(required - fields)]
                found += [
                    f"multipart field '{name}' is sent {exchange.sent_fields.count(name)} times"
                    for name in sorted(fields - operation.repeated)
                    if exchange.sent_fields.count(name) > 1
                ]
                found += [f"multipart field '{name}' is not the operation's" for name in sorted(fields - known)]
        elif operation.body is not None:
            if media != "application/json":
                found.append(f"sent {media or 'no content type'}, not application/json")
            if exchange.sent_json is not NOTHING:
                found += [f"request body {why}" for why in self.violations(operation.body, exchange.sent_json)]
        elif exchange.sent_bytes:
            found.append(f"sent a {exchange.sent_bytes}-byte body to an operation that takes none")
        return found

    def _answer_problems(self, operation: Operation, exchange: Exchange) -> list[str]:
        if exchange.status is None or exchange.fault in NO_ANSWER:
            return []
        status = exchange.status
        if status in EMPTY_ERRORS.get(self.forge, ()) and exchange.body in (None, "", b""):
            return []
        if exchange.fault == "status":  # an injected error: any status, but the forge's own error shape
            return self._body_problems(operation.errors, exchange)
        if status in operation.responses:
            return self._body_problems(operation.responses[status], exchange)
        documented = self.also_documented.get((operation.method, operation.template), {})
        if status in documented:
            return self._body_problems(operation.responses[documented[status]], exchange)
        if status >= 400 and operation.errors is not None:
            return self._body_problems(operation.errors, exchange)
        listed = sorted([*operation.responses, *documented])
        return [
            f"answered {status}, which the description does not list (it lists {', '.join(map(str, listed))}"
            f"{' and errors' if operation.errors else ''})"
        ]

    def _body_problems(self, schema: dict | None, exchange: Exchange) -> list[str]:
        if schema is None:  # no body, or a file's bytes (which the sandbox sends from disk, not as a body)
            return (
                []
                if exchange.body in (None, "", b"")
                else [f"answer {exchange.status} has a body where the description gives none"]
            )
        return [f"answer {exchange.status} {why}" for why in self.violations(schema, exchange.body)]


@functools.cache
def description(forge: str) -> Description:
    text = resources.files(__package__).joinpath("descriptions", DESCRIPTIONS[forge]).read_text(encoding="utf-8")
    return Description(forge, json.loads(text))


def problems(exchanges: list[Exchange]) -> list[str]:
    """Every contract problem in ``exchanges``, each said once."""
    found: dict[str, None] = {}
    for exchange in exchanges:
        for problem in description(exchange.forge).problems(exchange):
            found.setdefault(problem)
    return list(found)


def unlisted(exchanges: list[Exchange]) -> set[str]:
    """The operations beyond the descriptions that the program used, as ``forge METHOD template``."""
    used = set()
    for exchange in exchanges:
        operation = description(exchange.forge).operation(exchange.method, exchange.path)
        if operation is not None and operation.evidence and exchange.client.startswith(PROGRAM_AGENT):
            used.add(f"{exchange.forge} {operation}")
    return used


# -- reading a Swagger 2.0 description -------------------------------------------


def _operations(document: dict, errors: dict | None = None) -> list[Operation]:
    """``errors``: the schema of every error answer, where the description gives them none."""
    operations = []
    for template, methods in document.get("paths", {}).items():
        for method, spec in methods.items():
            if method.startswith("x-") or not isinstance(spec, dict):
                continue
            operations.append(_operation(method.upper(), template, spec, document, errors))
    return operations


def _operation(method: str, template: str, spec: dict, document: dict, errors: dict | None = None) -> Operation:
    parameters = spec.get("parameters", [])
    query = {
        p["name"]: {k: v for k, v in p.items() if k in ("type", "format", "minimum", "enum", "items")}
        for p in parameters
        if p.get("in") == "query"
    }
    body = next((p["schema"] for p in parameters if p.get("in") == "body"), None)
    form = None
    form_fields = [p for p in parameters if p.get("in") == "formData"]
    repeated = frozenset(p["name"] for p in form_fields if p.get("x-repeated"))
    if form_fields:
        form = (
            frozenset(p["name"] for p in form_fields if p.get("required")),
            frozenset(p["name"] for p in form_fields),
        )
    # The vendor's export describes uploads with OpenAPI 3's requestBody inside Swagger 2.0.
    multipart = spec.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema")
    if multipart is not None:
        form = (frozenset(multipart.get("required", ())), frozenset(multipart.get("properties", {})))
    answers = {status: _response(document, answer) for status, answer in spec.get("responses", {}).items()}
    responses = {int(status): answer.get("schema") for status, answer in answers.items() if status.isdigit()}
    if errors is not None:  # an error answer the description gives no schema is held to the forge's own
        responses = {
            status: errors if status >= 400 and schema is None else schema for status, schema in responses.items()
        }
    errors = answers.get("default", {}).get("schema") or errors
    return Operation(method, template, query, body, form, repeated, responses, errors)


def _response(document: dict, answer: dict) -> dict:
    """A response, its ``$ref`` to the description's shared ``responses`` followed."""
    reference = answer.get("$ref", "")
    if reference.startswith("#/responses/"):
        return document.get("responses", {}).get(reference.removeprefix("#/responses/"), {})
    return answer


def _without_null_properties(node: Any) -> Any:
    """The vendor's enums carry ``"properties": null``, which no JSON Schema validator takes."""
    if isinstance(node, dict):
        return {
            key: _without_null_properties(value)
            for key, value in node.items()
            if not (key == "properties" and value is None)
        }
    if isinstance(node, list):
        return [_without_null_properties(item) for item in node]
    return node


def _closed(definitions: dict, extras: dict[str, dict], sends: dict[str, list[str]]) -> dict:
    """The definitions with every object closed to the properties they list (and the live extras),
    and holding the fields the sandbox always sends."""
    closed = copy.deepcopy(definitions)
    for name, node in closed.items():
        if name in extras:
            node["properties"] = {**node.get("properties", {}), **extras[name]}
        if name in sends:
            node["required"] = sorted({*node.get("required", ()), *sends[name]})
    return _close(closed)


def _close(node: Any) -> Any:
    """Every object schema in ``node`` closed to the properties it lists (in place)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for item in node:
            _close(item)
    return node


# -- validating ---------------------------------------------------------------------


@functools.cache
def _validator(forge: str, schema_json: str, closed: bool):
    import jsonschema  # the sandbox's check only: the program itself never imports it

    known = description(forge)
    schema = json.loads(schema_json)
    if closed:  # an operation's own inline schema (BEYOND's PATCH body) is closed too
        schema = {**_close(schema), "definitions": known.closed_definitions}
    else:
        schema = {**schema, "definitions": known.definitions}
    return jsonschema.Draft4Validator(schema, format_checker=_formats(jsonschema))


@functools.cache
def _formats(jsonschema):
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("int64")
    def int64(value: Any) -> bool:
        return _integer_in(value, -(1 << 63), (1 << 63) - 1)

    @checker.checks("uint64")
    def uint64(value: Any) -> bool:
        return _integer_in(value, 0, (1 << 64) - 1)

    @checker.checks("date-time")
    def date_time(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return "T" in value.upper() and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False

    return checker


def _integer_in(value: Any, low: int, high: int) -> bool:
    """Protobuf's JSON carries 64-bit integers as decimal strings (and takes numbers too)."""
    if isinstance(value, bool):
        return True  # the type check speaks for it
    if isinstance(value, str):
        return re.fullmatch(r"-?[0-9]+", value) is not None and low <= int(value) <= high
    if isinstance(value, int):
        return low <= value <= high
    return True


def _query_value(schema: dict, value: str) -> Any:
    if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    if schema.get("type") == "boolean" and value in ("true", "false"):  # what Go's strconv.ParseBool reads too
        return value == "true"
    return value


def _where(error) -> str:
    return (
        "at " + "".join(f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
        if error.absolute_path
        else "at the top"
    )


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
