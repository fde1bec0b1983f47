# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract test: what the clients send and what the emulator answers, against the published documents.

The collection's own provider clients run in-process against the emulator through a
recording transport. Every request they send (path, method, parameters, body, auth) and
every answer the emulator returns (status code, body) for the OpenAI and OpenRouter paths
the collection uses is validated with openapi-core against the providers' published
OpenAPI documents, trimmed copies of which live in tests/contract/ (see SOURCES.md there).

A few answers the real APIs give are not listed in the documents (OpenAI documents only
200 for most operations). Those are named in ``UNDOCUMENTED`` with the reason, and their
bodies are still validated, against the document's own error schema.
"""

from __future__ import annotations

import copy
import json
import os
import re
import typing as t

import pytest

httpx = pytest.importorskip("httpx")
openapi_core = pytest.importorskip("openapi_core")

from openapi_core import OpenAPI  # noqa: E402
from openapi_core.datatypes import RequestParameters  # noqa: E402
from werkzeug.datastructures import Headers, ImmutableMultiDict  # noqa: E402

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import get_provider  # noqa: E402

from harness import REPO_ROOT  # noqa: E402

CONTRACT_DIR = os.path.join(REPO_ROOT, "tests", "contract")
SPEC_SERVER = {"openai": "https://api.openai.com/v1", "openrouter": "https://openrouter.ai/api/v1"}

# (provider, method, path template, status): answered by the real API, not listed by its document.
UNDOCUMENTED = {
    ("openai", "get", "/models", 401): "a rejected or scope-restricted key (error.code invalid_api_key, or null)",
    ("openai", "get", "/models", 403): "a scope-restricted key, as seen in the wild (Missing scopes: api.model.read)",
    ("openai", "get", "/organization/projects/{project_id}/api_keys/{api_key_id}", 404):
        "a key that does not exist (or was deleted): the clients read it as absent",
}
ERROR_SCHEMA = {"openai": "#/components/schemas/ErrorResponse"}


def load_spec(provider: str) -> dict:
    with open(os.path.join(CONTRACT_DIR, provider + ".json"), encoding="utf-8") as handle:
        spec = json.load(handle)
    spec = copy.deepcopy(spec)
    # openapi-core 0.23 cannot deserialise a query parameter whose schema type is a list (OpenRouter's
    # offset: [integer, null]); on the wire a query parameter is never null, so its non-null type is the same.
    for item in spec["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = param.get("schema", {})
                if isinstance(schema.get("type"), list):
                    kinds = [k for k in schema["type"] if k != "null"]
                    schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    for (owner, method, path, status), why in UNDOCUMENTED.items():
        if owner == provider:
            spec["paths"][path][method]["responses"][str(status)] = {
                "description": "not in the published document: " + why,
                "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA[provider]}}}}
    return spec


class SpecRequest:
    """An httpx request as openapi-core reads one, moved onto the document's server URL."""

    def __init__(self, request: t.Any, base_url: str, server: str) -> None:
        sub = request.url.path[len(httpx.URL(base_url).path):]
        server_url = httpx.URL(server)
        self.host_url = "%s://%s" % (server_url.scheme, server_url.host)
        self.path = server_url.path.rstrip("/") + sub
        self.method = request.method.lower()
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(request.url.params.multi_items())),
                                            header=Headers(list(request.headers.items())),
                                            cookie=ImmutableMultiDict())
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")


class SpecResponse:
    def __init__(self, response: t.Any) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content


class Recorder(httpx.BaseTransport):
    """A real transport that keeps every exchange."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: t.List[t.Tuple[t.Any, t.Any]] = []

    def handle_request(self, request: t.Any) -> t.Any:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response

    def close(self) -> None:
        self.inner.close()


class Contract:
    """Validates every exchange of a provider's clients against its document; counts the operations seen."""

    def __init__(self, provider: str, emulator: t.Any) -> None:
        self.provider = provider
        self.base_url = emulator.base_url(provider)
        self.api = OpenAPI.from_dict(load_spec(provider))
        self.recorder = Recorder()
        self.checked: t.List[t.Tuple[str, str, int]] = []

    def client(self, admin_key: t.Optional[str] = None, **params: t.Any) -> t.Any:
        values = {"provider": self.provider, "base_url": self.base_url, "admin_key": admin_key, "retries": 0}
        values.update(params)
        return get_provider(values, environ={}, transport=self.recorder)

    def validate(self) -> None:
        problems = []
        for request, response in self.recorder.exchanges:
            spec_request = SpecRequest(request, self.base_url, SPEC_SERVER[self.provider])
            where = "%s %s -> %s" % (request.method, spec_request.path, response.status_code)
            try:
                self.api.validate_request(spec_request)
                self.api.validate_response(spec_request, SpecResponse(response))
            except Exception as exc:  # every failure of the validator is a contract break: collect them all
                detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", []) or []) or str(exc)
                if exc.__cause__ is not None and not getattr(exc, "schema_errors", None):
                    detail += " (%s)" % exc.__cause__
                detail = re.sub(r"sk-[A-Za-z0-9_\-]{8,}", "sk-***", detail)  # test keys stay out of reports too
                problems.append("%s: %s: %s" % (where, type(exc).__name__, detail[:600]))
                continue
            self.checked.append((request.method, spec_request.path, response.status_code))
        self.recorder.exchanges = []
        assert not problems, "\n".join(problems)


def operations(provider: str) -> t.Set[t.Tuple[str, str]]:
    with open(os.path.join(CONTRACT_DIR, provider + ".json"), encoding="utf-8") as handle:
        spec = json.load(handle)
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method != "parameters"}


def template_of(path: str, provider: str) -> str:
    """The document's path template a concrete (server-relative) path belongs to."""
    server_path = httpx.URL(SPEC_SERVER[provider]).path.rstrip("/")
    rel = path[len(server_path):]
    for _method, template in operations(provider):
        parts, concrete = template.split("/"), rel.split("/")
        if len(parts) == len(concrete) and all(p == c or p.startswith("{") for p, c in zip(parts, concrete)):
            return template
    return rel


# -- OpenAI --------------------------------------------------------------------------

def test_openai_clients_and_emulator_follow_the_published_document(emulator):
    contract = Contract("openai", emulator)
    admin = emulator.control("POST", "keys", {"provider": "openai", "kind": "admin"})["value"]
    project = emulator.control("POST", "openai/projects", {"name": "search"})["id"]
    first = emulator.control("POST", "keys", {"provider": "openai", "project_id": project, "name": "search-first"})
    restricted = emulator.control("POST", "keys", {"provider": "openai", "project_id": project, "scopes": [],
                                                   "name": "restricted"})
    hidden = emulator.control("POST", "keys", {"provider": "openai", "project_id": project, "name": "hidden",
                                               "owner_project_access": "inactive"})
    own = contract.client(admin, openai_project_id=project)

    # probe: good, rejected, restricted (under each status seen), absent base
    assert own.probe(first["value"]).live is True
    assert own.probe(first["value"][:-4] + "0000").live is False
    for status in (401, 403):
        emulator.control("POST", "behaviour", {"openai_restricted_status": status})
        result = own.probe(restricted["value"])
        assert (result.live, result.restricted, result.status) == (True, True, status)
    # lookups see every enabled key, the hidden one too
    assert {r.id for r in own.find()} >= {first["id"], restricted["id"], hidden["id"]}
    # create on a service account of its own, then a second key on a configured account
    made = own.create("apikeys-rotation-1")
    assert made.record.extra["key_name"] == "Secret Key" and made.record.extra["service_account_name"] == "apikeys-rotation-1"
    assert own.find(name="apikeys-rotation-1")[0].id == made.record.id
    shared = contract.client(admin, openai_project_id=project, openai_service_account_id=first["service_account_id"])
    second = shared.create("apikeys-rotation-2")
    # revoke: the own account goes with its only key; a key of a shared account is refused (published reading)...
    assert own.set_status(made.record.id, "deleted").extra["service_account_deleted"] == made.record.extra[
        "service_account_id"]
    with pytest.raises(RotationError, match="STAYS ACTIVE"):
        shared.set_status(second.record.id, "deleted")
    # ...and deleted alone under the newer reading
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "allow"})
    assert shared.set_status(second.record.id, "deleted").status == "deleted"
    assert own.set_status(second.record.id, "deleted").previous_status == "absent"
    contract.validate()
    seen = {(m, template_of(p, "openai")) for m, p, _s in contract.checked}
    assert seen == operations("openai"), "operations not exercised: %s" % (operations("openai") - seen)
    statuses = {s for _m, _p, s in contract.checked}
    assert {200, 400, 401, 403, 404} <= statuses


def test_openai_document_catches_a_request_it_does_not_allow(emulator):
    """The validator is not a rubber stamp: a wrong value of a documented parameter fails the contract."""
    contract = Contract("openai", emulator)
    admin = emulator.control("POST", "keys", {"provider": "openai", "kind": "admin"})["value"]
    client = contract.client(admin, openai_project_id="proj_x")
    with pytest.raises(Exception):
        client.admin("GET", "/organization/projects/proj_x/api_keys", "a bad listing",
                     params={"owner_project_access": "everyone"}, ok=(200, 400, 404))
        contract.validate()
    contract.recorder.exchanges = []
    client.client.send("GET", "/models", "a probe without auth")
    with pytest.raises(AssertionError, match="Security|security|Authorization|authorization"):
        contract.validate()


# -- OpenRouter ------------------------------------------------------------------------

def test_openrouter_clients_and_emulator_follow_the_published_document(emulator):
    contract = Contract("openrouter", emulator)
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "admin"})["value"]
    default = contract.client(admin)
    in_workspace = contract.client(admin, openrouter_workspace_id="6e0bfc63-21d1-4e5b-9a7a-3bd2d1c9b001")
    made = default.create("apikeys-rotation-1")
    other = in_workspace.create("apikeys-rotation-2")
    assert default.probe(made.value).live is True
    assert default.probe(made.value[:-4] + "0000").live is False
    # a list without workspace_id sees the default workspace only; with it, that workspace
    assert [r.id for r in default.find(name="apikeys-rotation-2")] == []
    assert [r.id for r in in_workspace.find(name="apikeys-rotation-2")] == [other.record.id]
    assert default.set_status(made.record.id, "disabled").status == "disabled"
    assert default.set_status(made.record.id, "active").status == "active"
    assert default.set_status(made.record.id, "deleted").status == "deleted"
    assert default.set_status(made.record.id, "deleted").previous_status == "absent"
    contract.validate()
    seen = {(m, template_of(p, "openrouter")) for m, p, _s in contract.checked}
    assert seen == operations("openrouter"), "operations not exercised: %s" % (operations("openrouter") - seen)
    assert {200, 201, 401, 404} <= {s for _m, _p, s in contract.checked}
    # the label shows the last 4 characters
    assert made.record.redacted_hint.endswith(made.value[-4:])


def test_openrouter_error_answers_follow_the_document(emulator):
    contract = Contract("openrouter", emulator)
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "admin"})["value"]
    client = contract.client(admin)
    made = client.create("apikeys-rotation-3")
    for fault in (429, 500):
        emulator.control("POST", "faults", {"provider": "openrouter", "path": "^/keys$", "method": "GET",
                                            "status": fault})
        with pytest.raises(RotationError):
            client.find()
    emulator.control("POST", "faults", {"provider": "openrouter", "path": "^/key$", "status": 500})
    assert client.probe(made.value).live is False
    contract.validate()
    assert {429, 500} <= {s for _m, _p, s in contract.checked}
