# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider emulator itself: key formats, auth errors, pagination, revocation,
propagation delays, faults, hit counters, secrecy of the state and log, and the
official SDKs pointed at it unchanged."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
import time

import anthropic
import httpx
import openai
import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils.common import fingerprint
from harness import Emulator, assert_no_secret, wait_for

ANTHROPIC_VERSION = "2023-06-01"
KEY_FORMATS = {
    ("anthropic", "api"): r"^sk-ant-api03-[A-Za-z0-9_-]{93}AA$",
    ("anthropic", "admin"): r"^sk-ant-admin01-[A-Za-z0-9_-]{93}AA$",
    ("openai", "api"): r"^sk-svcacct-[A-Za-z0-9_-]+T3BlbkFJ[A-Za-z0-9_-]+$",
    ("openai", "admin"): r"^sk-admin-[A-Za-z0-9_-]+$",
    ("openrouter", "api"): r"^sk-or-v1-[0-9a-f]{64}$",
    ("openrouter", "admin"): r"^sk-or-v1-[0-9a-f]{64}$",
}
ID_FORMATS = {
    "anthropic": r"^apikey_01[A-Za-z0-9]+$",
    "openai": r"^key_[A-Za-z0-9]+$",
    "openrouter": r"^[0-9a-f]{64}$",
}

# One keep-alive client for the whole module, as the provider clients use one.
HTTP = httpx.Client()


def make_key(emulator, provider, kind="api", **extra):
    body = {"provider": provider, "kind": kind}
    body.update(extra)
    return emulator.control("POST", "keys", body)


def anthropic_req(emulator, method, path, key=None, version=ANTHROPIC_VERSION, timeout=5.0, **kwargs):
    headers = {}
    if key is not None:
        headers["x-api-key"] = key
    if version is not None:
        headers["anthropic-version"] = version
    return HTTP.request(method, emulator.base_url("anthropic") + path, headers=headers, timeout=timeout, **kwargs)


def bearer_req(emulator, provider, method, path, key=None, timeout=5.0, **kwargs):
    headers = {"Authorization": "Bearer " + key} if key is not None else {}
    return HTTP.request(method, emulator.base_url(provider) + path, headers=headers, timeout=timeout, **kwargs)


def key_entry(emulator, provider, key_id):
    found = [k for k in emulator.control("GET", "state")[provider]["keys"] if k["id"] == key_id]
    assert len(found) == 1, found
    return found[0]


def anthropic_error(resp, status, etype):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert body["request_id"] == resp.headers["request-id"]
    assert re.match(r"^req_01\w+$", body["request_id"])
    return body["error"]["message"]


def openai_error(resp, status):
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert resp.headers["x-request-id"].startswith("req_")
    return error


def openrouter_error(resp, status):
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error["message"]


# -- key formats ---------------------------------------------------------------

@pytest.mark.parametrize("provider,kind", sorted(KEY_FORMATS))
def test_minted_key_formats(emulator, provider, kind):
    first, second = make_key(emulator, provider, kind), make_key(emulator, provider, kind)
    for made in (first, second):
        value = made["value"]
        assert re.match(KEY_FORMATS[(provider, kind)], value), made["redacted_hint"]
        assert made["fingerprint"] == fingerprint(value)
        assert made["kind"] == kind and made["status"] == "active"
        if provider == "anthropic":
            assert len(value) == (108 if kind == "api" else 110)
            prefix = "sk-ant-api03-" if kind == "api" else "sk-ant-admin01-"
            assert made["partial_key_hint"] == prefix + value[len(prefix):len(prefix) + 3] + "..." + value[-4:]
            assert re.match(ID_FORMATS[provider], made["id"])
        elif provider == "openai":
            assert made["redacted_hint"] == value[:6] + "..." + value[-3:]
            assert re.match(ID_FORMATS[provider], made["id"])
            if kind == "api":
                assert made["project_id"].startswith("proj_") and made["service_account_id"].startswith("svc_acct_")
                assert made["redacted_value"] == made["redacted_hint"]
        else:
            assert made["hash"] == made["id"] == hashlib.sha256(value.encode()).hexdigest()
            assert made["label"] == "sk-or-v1-" + value[9:12] + "..." + value[-4:]
            assert made["is_management_key"] is (kind == "admin")
    assert first["value"] != second["value"] and first["id"] != second["id"]


def test_openai_keys_created_through_the_api(emulator):
    admin = make_key(emulator, "openai", "admin")["value"]
    project = emulator.control("POST", "openai/projects", {"name": "rotation"})["id"]
    assert project.startswith("proj_")
    resp = bearer_req(emulator, "openai", "POST", "/organization/projects/%s/service_accounts" % project, admin,
                      json={"name": "svc-r1"})
    assert resp.status_code == 200, resp.text
    sa = resp.json()
    assert sa["object"] == "organization.project.service_account" and sa["role"] == "member"
    assert sa["id"].startswith("svc_acct_") and sa["name"] == "svc-r1"
    first = sa["api_key"]
    assert first["object"] == "organization.project.service_account.api_key"
    assert re.match(KEY_FORMATS[("openai", "api")], first["value"]) and first["id"].startswith("key_")
    resp = bearer_req(emulator, "openai", "POST", "/organization/projects/%s/service_accounts/%s/api_keys" % (project, sa["id"]),
                      admin, json={"name": "second"})
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert set(second) == {"object", "value", "name", "created_at", "id"} and second["name"] == "second"
    resp = bearer_req(emulator, "openai", "GET", "/organization/projects/%s/api_keys/%s" % (project, second["id"]), admin)
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert listed["object"] == "organization.project.api_key"
    assert listed["redacted_value"] == second["value"][:6] + "..." + second["value"][-3:]
    assert listed["owner"]["type"] == "service_account" and listed["owner"]["service_account"]["id"] == sa["id"]
    assert "value" not in listed
    for made in (first, second):
        assert bearer_req(emulator, "openai", "GET", "/models", made["value"]).status_code == 200
        entry = key_entry(emulator, "openai", made["id"])
        assert entry["project_id"] == project and entry["service_account_id"] == sa["id"]
        assert entry["fingerprint"] == fingerprint(made["value"]) and entry["last_used_at"] is not None
    resp = bearer_req(emulator, "openai", "GET", "/organization/projects/proj_unknown/api_keys", admin)
    assert openai_error(resp, 404)["type"] == "invalid_request_error"


def test_openrouter_keys_created_through_the_api(emulator):
    management = make_key(emulator, "openrouter", "admin")["value"]
    for path in ("/keys", "/keys/"):
        resp = bearer_req(emulator, "openrouter", "POST", path, management, json={"name": "r-" + path, "limit": 5})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert re.match(KEY_FORMATS[("openrouter", "api")], body["key"])
        data = body["data"]
        assert data["hash"] == hashlib.sha256(body["key"].encode()).hexdigest()
        assert {"hash", "name", "label", "disabled", "limit", "usage", "created_at", "updated_at", "expires_at"} <= set(data)
        assert data["disabled"] is False and data["limit"] == 5
        resp = bearer_req(emulator, "openrouter", "GET", "/key", body["key"])
        assert resp.status_code == 200, resp.text
        info = resp.json()["data"]
        assert info["label"] == data["label"] and info["is_management_key"] is False
        assert {"label", "limit", "usage", "is_free_tier", "is_management_key"} <= set(info)
    resp = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"limit": 1})
    openrouter_error(resp, 400)


# -- authentication errors -----------------------------------------------------

def test_anthropic_auth_errors(emulator):
    api = make_key(emulator, "anthropic")
    admin = make_key(emulator, "anthropic", "admin")
    ok = anthropic_req(emulator, "GET", "/v1/models", api["value"])
    assert ok.status_code == 200 and ok.headers["request-id"].startswith("req_01")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", api["value"], version=None), 400, "invalid_request_error")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models"), 401, "authentication_error")
    bad = api["value"][:-6] + "xyzwAA"
    message = anthropic_error(anthropic_req(emulator, "GET", "/v1/models", bad), 401, "authentication_error")
    assert message == "invalid x-api-key"
    anthropic_error(anthropic_req(emulator, "GET", "/v1/organizations/api_keys", api["value"]), 403, "permission_error")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", admin["value"]), 401, "authentication_error")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/organizations/api_keys/apikey_01nope", admin["value"]), 404,
                    "not_found_error")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/nowhere", api["value"]), 404, "not_found_error")
    listed = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?beta=true", admin["value"])
    assert listed.status_code == 200 and [k["id"] for k in listed.json()["data"]] == [api["id"]]
    headers = {"Authorization": "Bearer " + api["value"], "anthropic-version": ANTHROPIC_VERSION}
    assert httpx.get(emulator.base_url("anthropic") + "/v1/models", headers=headers, timeout=5).status_code == 200


def test_openai_auth_errors(emulator):
    api = make_key(emulator, "openai")
    admin = make_key(emulator, "openai", "admin")
    assert bearer_req(emulator, "openai", "GET", "/models", api["value"]).status_code == 200
    bad = api["value"][:-8] + "AbCdEfGh"
    error = openai_error(bearer_req(emulator, "openai", "GET", "/models", bad), 401)
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    shown = re.match(r"^Incorrect API key provided: (\S+)\. ", error["message"]).group(1)
    assert shown == bad[:8] + "*" * (len(bad) - 12) + bad[-4:]
    assert len(shown.replace("*", "")) <= 12
    assert_no_secret(error["message"], bad)
    short = openai_error(bearer_req(emulator, "openai", "GET", "/models", "sk-short-guess"), 401)
    assert "sk-short-guess" not in short["message"] and "guess" not in short["message"]
    missing = openai_error(bearer_req(emulator, "openai", "GET", "/models"), 401)
    assert "didn't provide an API key" in missing["message"]
    project = api["project_id"]
    error = openai_error(bearer_req(emulator, "openai", "GET", "/organization/projects/%s/api_keys" % project,
                                    api["value"]), 401)
    assert "insufficient permissions" in error["message"] and error["code"] is None
    assert openai_error(bearer_req(emulator, "openai", "POST", "/chat/completions", admin["value"],
                                   json={"model": "gpt-4o", "messages": []}), 401)["code"] is None
    resp = bearer_req(emulator, "openai", "GET", "/organization/projects/%s/api_keys" % project, admin["value"])
    assert resp.status_code == 200 and [k["id"] for k in resp.json()["data"]] == [api["id"]]
    assert "Invalid URL" in openai_error(bearer_req(emulator, "openai", "GET", "/nowhere", api["value"]), 404)["message"]


def test_openrouter_auth_errors(emulator):
    api = make_key(emulator, "openrouter")
    management = make_key(emulator, "openrouter", "admin")
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", "sk-or-v1-" + "0" * 64), 401)
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key"), 401)
    models = bearer_req(emulator, "openrouter", "GET", "/models")
    assert models.status_code == 200 and models.json()["data"]
    assert bearer_req(emulator, "openrouter", "GET", "/models", "sk-or-v1-" + "0" * 64).status_code == 200
    message = openrouter_error(bearer_req(emulator, "openrouter", "GET", "/keys", api["value"]), 403)
    assert message == "Only management keys can perform this operation"
    openrouter_error(bearer_req(emulator, "openrouter", "POST", "/keys", api["value"], json={"name": "x"}), 403)
    openrouter_error(bearer_req(emulator, "openrouter", "POST", "/chat/completions", management["value"],
                                json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}), 403)
    resp = bearer_req(emulator, "openrouter", "POST", "/chat/completions", api["value"],
                      json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200 and resp.json()["choices"]
    info = bearer_req(emulator, "openrouter", "GET", "/key", management["value"])
    assert info.status_code == 200 and info.json()["data"]["is_management_key"] is True
    listed = bearer_req(emulator, "openrouter", "GET", "/keys", management["value"]).json()["data"]
    assert [k["hash"] for k in listed] == [api["hash"]]


# -- pagination ----------------------------------------------------------------

def test_anthropic_pagination(emulator):
    admin = make_key(emulator, "anthropic", "admin")["value"]
    made = [make_key(emulator, "anthropic", name="k%02d" % i)["id"] for i in range(25)]
    first = anthropic_req(emulator, "GET", "/v1/organizations/api_keys", admin).json()
    assert len(first["data"]) == 20 and first["has_more"] is True
    seen, after, pages = [], None, 0
    while True:
        query = "?limit=10" + ("&after_id=" + after if after else "")
        page = anthropic_req(emulator, "GET", "/v1/organizations/api_keys" + query, admin).json()
        pages += 1
        seen += [k["id"] for k in page["data"]]
        assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == 3 and seen == list(reversed(made))
    back = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?limit=10&before_id=" + made[0], admin).json()
    assert [k["id"] for k in back["data"]] == list(reversed(made))[14:24] and back["has_more"] is True
    for limit in ("0", "1001", "x"):
        anthropic_error(anthropic_req(emulator, "GET", "/v1/organizations/api_keys?limit=" + limit, admin), 400,
                        "invalid_request_error")
    models, after, api = [], None, make_key(emulator, "anthropic")["value"]
    while True:
        page = anthropic_req(emulator, "GET", "/v1/models?limit=3" + ("&after_id=" + after if after else ""), api).json()
        models += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert len(models) == len(set(models)) >= 5
    assert all(m["type"] == "model" and m["display_name"] for m in page["data"])


def test_anthropic_list_filters(emulator):
    admin = make_key(emulator, "anthropic", "admin")["value"]
    active = make_key(emulator, "anthropic", name="a")["id"]
    inactive = make_key(emulator, "anthropic", name="b", status="inactive")["id"]
    archived = make_key(emulator, "anthropic", name="c", status="archived", workspace_id="wrkspc_01other")["id"]
    by_status = {}
    for status in ("active", "inactive", "archived", "expired"):
        page = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?status=" + status, admin).json()
        by_status[status] = [k["id"] for k in page["data"]]
    assert by_status == {"active": [active], "inactive": [inactive], "archived": [archived], "expired": []}
    page = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?workspace_id=wrkspc_01other", admin).json()
    assert [k["id"] for k in page["data"]] == [archived]
    key = anthropic_req(emulator, "GET", "/v1/organizations/api_keys/" + active, admin).json()
    assert set(key) >= {"id", "type", "name", "created_at", "created_by", "partial_key_hint", "status", "workspace_id",
                        "expires_at"}
    assert key["type"] == "api_key" and key["created_by"]["type"] == "user"
    page = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?created_by_user_id=" + key["created_by"]["id"],
                         admin).json()
    assert len(page["data"]) == 3


def test_openai_pagination(emulator):
    admin = make_key(emulator, "openai", "admin")["value"]
    project = emulator.control("POST", "openai/projects", {"name": "p"})["id"]
    made = [make_key(emulator, "openai", project_id=project, name="k%02d" % i)["id"] for i in range(25)]
    path = "/organization/projects/%s/api_keys" % project
    assert len(bearer_req(emulator, "openai", "GET", path, admin).json()["data"]) == 20
    seen, after = [], None
    while True:
        page = bearer_req(emulator, "openai", "GET", path + "?limit=10" + ("&after=" + after if after else ""), admin).json()
        assert page["object"] == "list"
        seen += [k["id"] for k in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == made
    for limit in ("0", "101"):
        openai_error(bearer_req(emulator, "openai", "GET", path + "?limit=" + limit, admin), 400)
    assert len(bearer_req(emulator, "openai", "GET", path + "?limit=100", admin).json()["data"]) == 25


def test_openrouter_pagination_and_listing(emulator):
    management = make_key(emulator, "openrouter", "admin")["value"]
    hashes = []
    for i in range(105):
        resp = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"name": "k%03d" % i})
        assert resp.status_code == 201
        hashes.append(resp.json()["data"]["hash"])
    seen, offset = [], 0
    while True:
        page = bearer_req(emulator, "openrouter", "GET", "/keys?offset=%d" % offset, management).json()["data"]
        seen += [k["hash"] for k in page]
        offset += len(page)
        if len(page) < 100:
            break
    assert offset == 105 and sorted(seen) == sorted(hashes) and len(set(seen)) == 105
    disabled, deleted = hashes[0], hashes[1]
    assert bearer_req(emulator, "openrouter", "PATCH", "/keys/" + disabled, management, json={"disabled": True}).status_code == 200
    assert bearer_req(emulator, "openrouter", "DELETE", "/keys/" + deleted, management).json() == {"deleted": True}

    def listed(include_disabled):
        found, skip = [], 0
        while True:
            query = "?offset=%d" % skip + ("&include_disabled=true" if include_disabled else "")
            page = bearer_req(emulator, "openrouter", "GET", "/keys" + query, management).json()["data"]
            found += [k["hash"] for k in page]
            skip += len(page)
            if len(page) < 100:
                return found

    assert disabled not in listed(False) and deleted not in listed(False) and len(listed(False)) == 103
    assert disabled in listed(True) and deleted not in listed(True) and len(listed(True)) == 104


# -- revocation takes effect at once -------------------------------------------

def test_anthropic_inactive_and_archived(emulator):
    admin = make_key(emulator, "anthropic", "admin")["value"]
    key = make_key(emulator, "anthropic", name="console")
    path = "/v1/organizations/api_keys/" + key["id"]
    resp = anthropic_req(emulator, "POST", path, admin, json={"name": "rot-1", "status": "inactive"})
    assert resp.status_code == 200 and resp.json()["status"] == "inactive" and resp.json()["name"] == "rot-1"
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", key["value"]), 401, "authentication_error")
    assert key_entry(emulator, "anthropic", key["id"])["status"] == "inactive"
    assert anthropic_req(emulator, "POST", path, admin, json={"status": "active"}).json()["status"] == "active"
    assert anthropic_req(emulator, "GET", "/v1/models", key["value"]).status_code == 200
    assert anthropic_req(emulator, "POST", path, admin, json={"status": "archived"}).json()["status"] == "archived"
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", key["value"]), 401, "authentication_error")
    anthropic_error(anthropic_req(emulator, "POST", path, admin, json={"status": "active"}), 400, "invalid_request_error")
    anthropic_error(anthropic_req(emulator, "POST", path, admin, json={"name": "again"}), 400, "invalid_request_error")
    anthropic_error(anthropic_req(emulator, "POST", path, admin, json={"status": "expired"}), 400, "invalid_request_error")
    assert key_entry(emulator, "anthropic", key["id"])["status"] == "archived"


def test_openai_service_account_key_delete_is_refused_by_default(emulator):
    """The published document: DELETE of a service account's key is an error; the key stays live."""
    admin = make_key(emulator, "openai", "admin")["value"]
    key = make_key(emulator, "openai")
    assert emulator.control("GET", "behaviour")["openai_service_account_key_delete"] == "refuse"
    path = "/organization/projects/%s/api_keys/%s" % (key["project_id"], key["id"])
    resp = bearer_req(emulator, "openai", "DELETE", path, admin)
    assert "belongs to a service account" in openai_error(resp, 400)["message"]
    assert key_entry(emulator, "openai", key["id"])["status"] == "active"
    assert bearer_req(emulator, "openai", "GET", "/models", key["value"]).status_code == 200


def test_openai_delete_is_immediate_and_final(emulator):
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "allow"})
    admin = make_key(emulator, "openai", "admin")["value"]
    key = make_key(emulator, "openai")
    other = make_key(emulator, "openai", project_id=key["project_id"], service_account_id=key["service_account_id"])
    path = "/organization/projects/%s/api_keys/%s" % (key["project_id"], key["id"])
    resp = bearer_req(emulator, "openai", "DELETE", path, admin)
    assert resp.json() == {"object": "organization.project.api_key.deleted", "id": key["id"], "deleted": True}
    openai_error(bearer_req(emulator, "openai", "GET", "/models", key["value"]), 401)
    openai_error(bearer_req(emulator, "openai", "GET", path, admin), 404)
    openai_error(bearer_req(emulator, "openai", "DELETE", path, admin), 404)
    assert key_entry(emulator, "openai", key["id"])["status"] == "deleted"
    assert bearer_req(emulator, "openai", "GET", "/models", other["value"]).status_code == 200
    sa_path = "/organization/projects/%s/service_accounts/%s" % (key["project_id"], key["service_account_id"])
    resp = bearer_req(emulator, "openai", "DELETE", sa_path, admin)
    assert resp.json()["object"] == "organization.project.service_account.deleted"
    openai_error(bearer_req(emulator, "openai", "GET", "/models", other["value"]), 401)
    state = emulator.control("GET", "state")["openai"]
    assert [sa["status"] for sa in state["service_accounts"]] == ["deleted"]
    assert {k["status"] for k in state["keys"] if k["kind"] == "api"} == {"deleted"}


def test_openrouter_disable_and_delete(emulator):
    management = make_key(emulator, "openrouter", "admin")["value"]
    key = make_key(emulator, "openrouter", name="app")
    path = "/keys/" + key["hash"]
    resp = bearer_req(emulator, "openrouter", "PATCH", path, management, json={"disabled": True})
    assert resp.status_code == 200 and resp.json()["data"]["disabled"] is True
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", key["value"]), 401)
    assert key_entry(emulator, "openrouter", key["id"])["status"] == "disabled"
    assert bearer_req(emulator, "openrouter", "GET", path, management).json()["data"]["disabled"] is True
    assert bearer_req(emulator, "openrouter", "PATCH", path, management, json={"disabled": False}).status_code == 200
    assert bearer_req(emulator, "openrouter", "GET", "/key", key["value"]).status_code == 200
    assert bearer_req(emulator, "openrouter", "DELETE", path, management).status_code == 200
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", key["value"]), 401)
    openrouter_error(bearer_req(emulator, "openrouter", "GET", path, management), 404)
    openrouter_error(bearer_req(emulator, "openrouter", "DELETE", path, management), 404)
    assert key_entry(emulator, "openrouter", key["id"])["status"] == "deleted"


# -- propagation -----------------------------------------------------------------

def test_new_key_delay_and_revoke_delay(emulator):
    management = make_key(emulator, "openrouter", "admin")["value"]
    old = make_key(emulator, "openrouter", name="old")
    settings = emulator.control("POST", "propagation", {"new_key_delay": 3, "revoke_delay": 3})
    assert all(settings[p]["new_key_delay"] == 3 for p in ("anthropic", "openai", "openrouter"))
    made = time.time()  # before the keys exist and before the revoke: no switch can come earlier than made + 3
    created = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"name": "new"}).json()
    anthropic_key = make_key(emulator, "anthropic")
    assert bearer_req(emulator, "openrouter", "DELETE", "/keys/" + old["hash"], management).status_code == 200
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", created["key"]), 401)
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", anthropic_key["value"]), 401, "authentication_error")
    assert bearer_req(emulator, "openrouter", "GET", "/key", old["value"]).status_code == 200
    assert key_entry(emulator, "openrouter", old["id"])["status"] == "deleted"
    assert bearer_req(emulator, "openrouter", "GET", "/key", management).status_code == 200
    # Each switch is waited for as it happens, not for a fixed time; none may come before its delay.
    switches = {
        "the new OpenRouter key is accepted":
            lambda: bearer_req(emulator, "openrouter", "GET", "/key", created["key"]).status_code == 200,
        "the new Anthropic key is accepted":
            lambda: anthropic_req(emulator, "GET", "/v1/models", anthropic_key["value"]).status_code == 200,
        "the revoked key is refused": lambda: bearer_req(emulator, "openrouter", "GET", "/key", old["value"]).status_code == 401,
    }
    for what, switched in switches.items():
        wait_for(switched, 60, what)
        assert time.time() >= made + 3, "%s before its 3 s delay" % what
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", old["value"]), 401)
    assert bearer_req(emulator, "openrouter", "GET", "/key", created["key"]).status_code == 200


def test_new_key_refusals(emulator):
    """A new key is refused its first N authentications, then accepted; keys made before, and admin keys, never are."""
    management = make_key(emulator, "openrouter", "admin")["value"]
    old = make_key(emulator, "openrouter", name="old")
    settings = emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_refusals": 2})
    assert settings["openrouter"]["new_key_refusals"] == 2 and settings["openai"]["new_key_refusals"] == 0
    created = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"name": "new"}).json()
    openai_key = make_key(emulator, "openai")
    for _refusal in range(2):
        openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", created["key"]), 401)
        assert bearer_req(emulator, "openrouter", "GET", "/key", old["value"]).status_code == 200
        assert bearer_req(emulator, "openrouter", "GET", "/key", management).status_code == 200
    assert bearer_req(emulator, "openrouter", "GET", "/key", created["key"]).status_code == 200
    assert bearer_req(emulator, "openrouter", "GET", "/key", created["key"]).status_code == 200
    assert bearer_req(emulator, "openai", "GET", "/models", openai_key["value"]).status_code == 200
    emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_refusals": 0})
    assert bearer_req(emulator, "openrouter", "GET", "/key", make_key(emulator, "openrouter")["value"]).status_code == 200
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(RuntimeError):
            emulator.control("POST", "propagation", {"new_key_refusals": bad})


def test_never_valid(emulator):
    admin = make_key(emulator, "openai", "admin")["value"]
    emulator.control("POST", "propagation", {"provider": "openai", "never_valid": True})
    project = emulator.control("POST", "openai/projects", {"name": "p"})["id"]
    resp = bearer_req(emulator, "openai", "POST", "/organization/projects/%s/service_accounts" % project, admin,
                      json={"name": "svc"})
    assert resp.status_code == 200
    created = resp.json()["api_key"]
    openai_error(bearer_req(emulator, "openai", "GET", "/models", created["value"]), 401)
    assert key_entry(emulator, "openai", created["id"])["authenticates"] is False
    other = make_key(emulator, "openrouter")
    assert bearer_req(emulator, "openrouter", "GET", "/key", other["value"]).status_code == 200
    emulator.control("POST", "propagation", {"provider": "openai", "never_valid": False})
    openai_error(bearer_req(emulator, "openai", "GET", "/models", created["value"]), 401)
    assert bearer_req(emulator, "openai", "GET", "/models", make_key(emulator, "openai")["value"]).status_code == 200


# -- faults ------------------------------------------------------------------------

def test_fault_429_with_retry_headers(emulator):
    key = make_key(emulator, "anthropic")["value"]
    emulator.control("POST", "faults", {"provider": "anthropic", "path": "^/v1/models$", "status": 429, "count": 2,
                                        "retry_after": 2, "retry_after_ms": 1500})
    message = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    assert anthropic_req(emulator, "POST", "/v1/messages", key, json=message).status_code == 200
    for dummy in range(2):
        resp = anthropic_req(emulator, "GET", "/v1/models", key)
        anthropic_error(resp, 429, "rate_limit_error")
        assert resp.headers["Retry-After"] == "2" and resp.headers["retry-after-ms"] == "1500"
    assert anthropic_req(emulator, "GET", "/v1/models", key).status_code == 200
    emulator.control("POST", "faults", {"provider": "openai", "method": "GET", "retry_after": 1})
    resp = bearer_req(emulator, "openai", "GET", "/models", make_key(emulator, "openai")["value"])
    assert openai_error(resp, 429)["code"] == "rate_limit_exceeded" and resp.headers["Retry-After"] == "1"


def test_fault_statuses_in_provider_shapes(emulator):
    emulator.control("POST", "faults", {"provider": "anthropic", "status": 529})
    emulator.control("POST", "faults", {"provider": "anthropic", "status": 500})
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models"), 529, "overloaded_error")
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models"), 500, "api_error")
    emulator.control("POST", "faults", {"provider": "openai", "status": 500})
    assert openai_error(bearer_req(emulator, "openai", "GET", "/models"), 500)["type"] == "server_error"
    emulator.control("POST", "faults", {"provider": "openrouter", "status": 503, "retry_after": 0.5})
    resp = bearer_req(emulator, "openrouter", "GET", "/models")
    openrouter_error(resp, 503)
    assert resp.headers["Retry-After"] == "0.5"
    emulator.control("POST", "faults", {"status": 502, "method": "DELETE"})
    assert bearer_req(emulator, "openrouter", "GET", "/models").status_code == 200
    openai_error(bearer_req(emulator, "openai", "DELETE", "/organization/projects/p/api_keys/k"), 502)
    assert emulator.control("GET", "faults") == {"faults": []}
    for bad in ({"status": 42}, {"provider": "acme", "status": 500}, {"path": "(", "status": 500}, {"count": 2},
                {"status": 500, "colour": "red"}):
        with pytest.raises(RuntimeError):
            emulator.control("POST", "faults", bad)


def test_fault_latency(emulator):
    key = make_key(emulator, "openrouter")["value"]
    emulator.control("POST", "faults", {"provider": "openrouter", "path": "^/key$", "latency": 2.0})
    slow = {}

    def slow_request():
        started = time.monotonic()
        with httpx.Client() as client:
            slow["status"] = client.get(emulator.base_url("openrouter") + "/key", timeout=10,
                                        headers={"Authorization": "Bearer " + key}).status_code
        slow["elapsed"] = time.monotonic() - started

    worker = threading.Thread(target=slow_request)
    worker.start()
    # the slow request takes the fault first (its client may take a while to start on a loaded machine)
    wait_for(lambda: emulator.control("GET", "faults")["faults"] == [], 10, "the slow request to take the fault")
    assert bearer_req(emulator, "openrouter", "GET", "/key", key).status_code == 200
    assert emulator.control("GET", "state")["openrouter"]["keys"][0]["authenticates"] is True
    # ordering, not a stopwatch: the second request was answered while the first still slept
    assert worker.is_alive() and "status" not in slow, "a sleeping fault must not hold up other requests"
    worker.join(10)
    assert slow == {"status": 200, "elapsed": slow["elapsed"]} and slow["elapsed"] >= 2.0


def test_fault_hang_drops_the_connection(emulator):
    key = make_key(emulator, "openai")["value"]
    emulator.control("POST", "faults", {"provider": "openai", "path": "^/models$", "hang": 5.0})
    with pytest.raises(httpx.ReadTimeout):
        bearer_req(emulator, "openai", "GET", "/models", key, timeout=0.3)
    assert bearer_req(emulator, "openai", "GET", "/models", key).status_code == 200
    statuses = [r["status"] for r in emulator.control("GET", "hits")["requests"]]
    assert statuses == [None, 200]


def test_hang_then_closed_without_answer(emulator):
    emulator.control("POST", "faults", {"provider": "openrouter", "hang": 0.2})
    with pytest.raises(httpx.RemoteProtocolError):
        bearer_req(emulator, "openrouter", "GET", "/models", timeout=3)


# -- hits, state, log, reset -------------------------------------------------------

def test_hit_counters_by_route_template(emulator):
    key = make_key(emulator, "anthropic")["value"]
    management = make_key(emulator, "openrouter", "admin")["value"]
    openai_admin = make_key(emulator, "openai", "admin")["value"]
    openai_key = make_key(emulator, "openai")
    for dummy in range(2):
        anthropic_req(emulator, "GET", "/v1/models", key)
    anthropic_req(emulator, "POST", "/v1/messages", key, json={"model": "m", "max_tokens": 1,
                                                               "messages": [{"role": "user", "content": "x"}]})
    bearer_req(emulator, "openai", "POST", "/chat/completions", openai_key["value"],
               json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    bearer_req(emulator, "openai", "DELETE", "/organization/projects/%s/api_keys/%s"
               % (openai_key["project_id"], openai_key["id"]), openai_admin)
    created = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"name": "n"}).json()
    bearer_req(emulator, "openrouter", "GET", "/keys/" + created["data"]["hash"], management)
    bearer_req(emulator, "openrouter", "GET", "/nowhere", management)
    hits = emulator.control("GET", "hits")
    assert hits["counts"] == {
        "anthropic GET /v1/models": 2,
        "anthropic POST /v1/messages": 1,
        "openai POST /chat/completions": 1,
        "openai DELETE /organization/projects/{project_id}/api_keys/{key_id}": 1,
        "openrouter POST /keys": 1,
        "openrouter GET /keys/{hash}": 1,
        "openrouter GET /nowhere": 1,
    }
    last = hits["requests"][-2]
    assert last == {"provider": "openrouter", "method": "GET", "route": "/keys/{hash}",
                    "path": "/keys/" + created["data"]["hash"], "status": 200}
    assert hits["requests"][-1]["status"] == 404
    emulator.control("DELETE", "hits")
    assert emulator.control("GET", "hits") == {"counts": {}, "requests": []}


def test_state_hits_and_log_never_hold_key_values(emulator):
    values = []
    for provider in ("anthropic", "openai", "openrouter"):
        for kind in ("api", "admin"):
            values.append(make_key(emulator, provider, kind)["value"])
    management = values[5]
    created = bearer_req(emulator, "openrouter", "POST", "/keys", management, json={"name": "n"}).json()["key"]
    values.append(created)
    for value in values:
        anthropic_req(emulator, "GET", "/v1/models", value)
        bearer_req(emulator, "openai", "GET", "/models", value)
        bearer_req(emulator, "openrouter", "GET", "/key", value)
        bearer_req(emulator, "openrouter", "GET", "/keys/" + value, management)
    state = json.dumps(emulator.control("GET", "state"))
    hits = json.dumps(emulator.control("GET", "hits"))
    with open(emulator.log_path, encoding="utf-8") as handle:
        log = handle.read()
    assert "GET /openrouter/api/v1/key " in log
    for value in values:
        assert_no_secret(state, value)
        assert_no_secret(hits, value)
        assert_no_secret(log, value)
    assert all(fingerprint(v) in state for v in values)


def test_reset(emulator):
    key = make_key(emulator, "openrouter")["value"]
    emulator.control("POST", "faults", {"status": 500, "count": 5})
    emulator.control("POST", "propagation", {"revoke_delay": 3, "new_key_refusals": 4})
    emulator.control("POST", "openai/projects", {"name": "p"})
    emulator.worker("gone", "openrouter")
    bearer_req(emulator, "openrouter", "GET", "/models")
    assert emulator.control("POST", "reset") == {"ok": True}
    state = emulator.control("GET", "state")
    assert state == {"anthropic": {"keys": []}, "openai": {"keys": [], "service_accounts": [], "projects": []},
                     "openrouter": {"keys": []}, "cloudflare": {"workers": []}}
    assert emulator.control("GET", "hits") == {"counts": {}, "requests": []}
    assert emulator.control("GET", "faults") == {"faults": []}
    assert emulator.control("GET", "propagation")["openrouter"] == {"new_key_delay": 0.0, "new_key_refusals": 0,
                                                                    "revoke_delay": 0.0, "never_valid": False}
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/key", key), 401)


def test_control_api_validation(emulator):
    assert emulator.control("GET", "health") == {"ok": True}
    for bad in ({"provider": "acme"}, {"provider": "openai", "kind": "root"}, {"provider": "openai", "status": "disabled"},
                {"provider": "anthropic", "project_id": "proj_x"}, {"provider": "openrouter", "nmae": "typo"},
                {"provider": "openai", "project_id": "nope"}):
        with pytest.raises(RuntimeError):
            emulator.control("POST", "keys", bad)
    with pytest.raises(RuntimeError):
        emulator.control("GET", "nothing-here")
    with pytest.raises(RuntimeError):
        emulator.control("POST", "propagation", {"revoke_delay": -1})
    made = make_key(emulator, "openai", project_id="proj_given", service_account_id="svc_acct_given")
    assert (made["project_id"], made["service_account_id"]) == ("proj_given", "svc_acct_given")
    state = emulator.control("GET", "state")["openai"]
    assert [p["id"] for p in state["projects"]] == ["proj_given"]
    assert state["service_accounts"][0]["id"] == "svc_acct_given"


def test_keep_alive_connection(emulator):
    key = make_key(emulator, "openai")["value"]
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        for auth, status in (("Bearer " + key, 200), ("Bearer wrong", 401), ("Bearer " + key, 200)):
            conn.request("GET", "/openai/v1/models", headers={"Authorization": auth})
            resp = conn.getresponse()
            assert resp.status == status
            assert int(resp.headers["Content-Length"]) == len(resp.read())
        assert conn.sock is not None
    finally:
        conn.close()


def test_sigterm_stops_cleanly(tmp_path):
    server = Emulator(str(tmp_path)).start()
    server.stop()
    assert server.proc.returncode == 0
    with open(server.log_path, encoding="utf-8") as handle:
        assert "stopped" in handle.read()


# -- the official SDKs, unchanged --------------------------------------------------

def test_anthropic_sdk_models_and_admin_api(emulator):
    key = make_key(emulator, "anthropic", name="console")
    admin = make_key(emulator, "anthropic", "admin")
    client = anthropic.Anthropic(api_key=key["value"], base_url=emulator.base_url("anthropic"), max_retries=0, timeout=5)
    models = [m.id for m in client.models.list(limit=3)]
    assert len(models) == len(set(models)) >= 5
    admin_client = anthropic.Anthropic(api_key=admin["value"], base_url=emulator.base_url("anthropic"),
                                       max_retries=0, timeout=5)
    listed = [(k.id, k.status) for k in admin_client.organization.api_keys.list()]
    assert listed == [(key["id"], "active")]
    updated = admin_client.organization.api_keys.update(key["id"], name="rot-7", status="inactive")
    assert updated.status == "inactive" and updated.partial_key_hint == key["partial_key_hint"]
    assert admin_client.beta.organization.api_keys.retrieve(key["id"]).name == "rot-7"
    entry = key_entry(emulator, "anthropic", key["id"])
    assert (entry["name"], entry["status"]) == ("rot-7", "inactive")
    with pytest.raises(anthropic.AuthenticationError):
        client.models.list()
    other = anthropic.Anthropic(api_key=make_key(emulator, "anthropic")["value"], base_url=emulator.base_url("anthropic"),
                                max_retries=0, timeout=5)
    with pytest.raises(anthropic.PermissionDeniedError):
        other.organization.api_keys.list()
    counts = emulator.control("GET", "hits")["counts"]
    assert counts["anthropic POST /v1/organizations/api_keys/{id}"] == 1


def test_openai_sdk_models_and_admin_api(emulator):
    key = make_key(emulator, "openai")
    admin = make_key(emulator, "openai", "admin")
    client = openai.OpenAI(api_key=key["value"], base_url=emulator.base_url("openai"), max_retries=0, timeout=5)
    assert "gpt-4o" in [m.id for m in client.models.list()]
    admin_client = openai.OpenAI(api_key=admin["value"], admin_api_key=admin["value"], base_url=emulator.base_url("openai"),
                                 max_retries=0, timeout=5)
    keys = admin_client.admin.organization.projects.api_keys
    assert [k.id for k in keys.list(key["project_id"])] == [key["id"]]
    with pytest.raises(openai.BadRequestError, match="belongs to a service account"):
        keys.delete(key["id"], project_id=key["project_id"])
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "allow"})
    assert keys.delete(key["id"], project_id=key["project_id"]).deleted is True
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert key_entry(emulator, "openai", key["id"])["status"] == "deleted"


# -- as strict as the real APIs -----------------------------------------------------------

def test_unknown_query_parameters_and_body_fields_are_refused(emulator):
    anthropic_admin = make_key(emulator, "anthropic", "admin")["value"]
    console = make_key(emulator, "anthropic")
    openai_admin = make_key(emulator, "openai", "admin")["value"]
    sa_key = make_key(emulator, "openai")
    openrouter_admin = make_key(emulator, "openrouter", "admin")["value"]
    message = anthropic_error(anthropic_req(emulator, "GET", "/v1/organizations/api_keys?colour=red", anthropic_admin),
                              400, "invalid_request_error")
    assert "colour" in message
    anthropic_error(anthropic_req(emulator, "POST", "/v1/organizations/api_keys/%s" % console["id"], anthropic_admin,
                                  json={"name": "x", "colour": "red"}), 400, "invalid_request_error")
    keys_path = "/organization/projects/%s/api_keys" % sa_key["project_id"]
    error = openai_error(bearer_req(emulator, "openai", "GET", keys_path + "?colour=red", openai_admin), 400)
    assert error["code"] == "unknown_parameter" and error["param"] == "colour"
    sa_path = "/organization/projects/%s/service_accounts" % sa_key["project_id"]
    error = openai_error(bearer_req(emulator, "openai", "POST", sa_path, openai_admin, json={"name": "x", "role": "owner"}),
                         400)
    assert "Unrecognized request argument supplied: role" == error["message"]
    openrouter_error(bearer_req(emulator, "openrouter", "GET", "/keys?colour=red", openrouter_admin), 400)
    openrouter_error(bearer_req(emulator, "openrouter", "POST", "/keys", openrouter_admin,
                                json={"name": "x", "colour": "red"}), 400)
    # nothing was made by the refused calls
    state = emulator.control("GET", "state")
    assert len([k for k in state["openrouter"]["keys"] if k["kind"] == "api"]) == 0
    assert len(state["openai"]["service_accounts"]) == 1


def test_wrong_methods_are_refused(emulator):
    anthropic_admin = make_key(emulator, "anthropic", "admin")["value"]
    openrouter_admin = make_key(emulator, "openrouter", "admin")["value"]
    openai_admin = make_key(emulator, "openai", "admin")["value"]
    anthropic_error(anthropic_req(emulator, "DELETE", "/v1/organizations/api_keys/apikey_01x", anthropic_admin), 405,
                    "invalid_request_error")
    openrouter_error(bearer_req(emulator, "openrouter", "PUT", "/keys", openrouter_admin), 405)
    error = openai_error(bearer_req(emulator, "openai", "PATCH", "/organization/projects/proj_x/api_keys/key_x",
                                    openai_admin), 404)
    assert error["message"].startswith("Invalid URL (PATCH /v1/organization/projects/")


def test_wrong_auth_header_forms_are_refused(emulator):
    openai_key = make_key(emulator, "openai")["value"]
    openrouter_key = make_key(emulator, "openrouter")["value"]
    anthropic_key = make_key(emulator, "anthropic")["value"]
    # OpenAI and OpenRouter take only Authorization: Bearer
    resp = HTTP.get(emulator.base_url("openai") + "/models", headers={"x-api-key": openai_key}, timeout=5)
    openai_error(resp, 401)
    resp = HTTP.get(emulator.base_url("openai") + "/models", headers={"Authorization": "Basic " + openai_key}, timeout=5)
    openai_error(resp, 401)
    resp = HTTP.get(emulator.base_url("openrouter") + "/key", headers={"x-api-key": openrouter_key}, timeout=5)
    openrouter_error(resp, 401)
    # Anthropic: x-api-key (or Bearer, which its SDK 2.x sends); any other Authorization scheme is refused
    resp = HTTP.get(emulator.base_url("anthropic") + "/v1/models", timeout=5,
                    headers={"Authorization": "Basic " + anthropic_key, "anthropic-version": ANTHROPIC_VERSION})
    anthropic_error(resp, 401, "authentication_error")


def test_openai_list_omits_keys_whose_owner_lost_access_unless_any(emulator):
    admin = make_key(emulator, "openai", "admin")["value"]
    seen = make_key(emulator, "openai", name="seen")
    hidden = make_key(emulator, "openai", name="hidden", project_id=seen["project_id"], owner_project_access="inactive")
    path = "/organization/projects/%s/api_keys" % seen["project_id"]

    def listed(query=""):
        resp = bearer_req(emulator, "openai", "GET", path + query, admin)
        assert resp.status_code == 200, resp.text
        return {k["id"]: k["owner_project_access"] for k in resp.json()["data"]}

    assert listed() == {seen["id"]: "active"}
    assert listed("?owner_project_access=any") == {seen["id"]: "active", hidden["id"]: "inactive"}
    assert listed("?owner_project_access=inactive") == {hidden["id"]: "inactive"}
    openai_error(bearer_req(emulator, "openai", "GET", path + "?owner_project_access=all", admin), 400)


@pytest.mark.parametrize("status", [401, 403])
def test_openai_restricted_key_and_other_refusal_codes(emulator, status):
    emulator.control("POST", "behaviour", {"openai_restricted_status": status})
    restricted = make_key(emulator, "openai", scopes=["model.request"])
    error = openai_error(bearer_req(emulator, "openai", "GET", "/models", restricted["value"]), status)
    assert error["code"] is None and "Missing scopes: api.model.read" in error["message"]
    # it still serves what it is scoped for
    resp = bearer_req(emulator, "openai", "POST", "/chat/completions", restricted["value"],
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200
    fenced = make_key(emulator, "openai", refusal_code="ip_not_authorized")
    error = openai_error(bearer_req(emulator, "openai", "GET", "/models", fenced["value"]), 401)
    assert error["code"] == "ip_not_authorized"


def test_openrouter_workspaces(emulator):
    admin = make_key(emulator, "openrouter", "admin")["value"]
    default = make_key(emulator, "openrouter", name="default")
    other = make_key(emulator, "openrouter", name="other", workspace_id="6e0bfc63-21d1-4e5b-9a7a-3bd2d1c9b001")

    def names(query=""):
        resp = bearer_req(emulator, "openrouter", "GET", "/keys" + query, admin)
        assert resp.status_code == 200, resp.text
        return [(k["name"], k["workspace_id"]) for k in resp.json()["data"]]

    assert names() == [("default", default["workspace_id"])]
    assert names("?workspace_id=" + other["workspace_id"]) == [("other", other["workspace_id"])]
    made = bearer_req(emulator, "openrouter", "POST", "/keys", admin,
                      json={"name": "made", "workspace_id": other["workspace_id"]})
    assert made.status_code == 201 and made.json()["data"]["workspace_id"] == other["workspace_id"]
    assert [n for n, _w in names("?workspace_id=" + other["workspace_id"])] == ["other", "made"]
    assert made.json()["data"]["label"].endswith(made.json()["key"][-4:])


def test_anthropic_key_shapes_of_the_newer_reference(emulator):
    admin = make_key(emulator, "anthropic", "admin")["value"]
    default = make_key(emulator, "anthropic", name="default-workspace")
    org = make_key(emulator, "anthropic", name="org", scope="organization")
    bare = make_key(emulator, "anthropic", name="bare", no_hint=True, no_creator=True)
    expired = make_key(emulator, "anthropic", name="expired", expires_in=-1)
    later = make_key(emulator, "anthropic", name="later", expires_in=3600)
    resp = anthropic_req(emulator, "GET", "/v1/organizations/api_keys", admin)
    listed = {k["name"]: k for k in resp.json()["data"]}
    assert listed["default-workspace"]["workspace_id"] is None
    assert listed["default-workspace"]["scope"]["type"] == "workspace"
    assert listed["default-workspace"]["scope"]["workspace_id"].startswith("wrkspc_")
    assert listed["org"]["scope"] == {"type": "organization"} and listed["org"]["workspace_id"] is None
    assert listed["bare"]["partial_key_hint"] is None and listed["bare"]["created_by"] is None
    assert listed["expired"]["status"] == "expired" and listed["expired"]["expires_at"]
    assert listed["later"]["status"] == "active" and listed["later"]["expires_at"]
    anthropic_error(anthropic_req(emulator, "GET", "/v1/models", expired["value"]), 401, "authentication_error")
    assert anthropic_req(emulator, "GET", "/v1/models", later["value"]).status_code == 200
    assert anthropic_req(emulator, "GET", "/v1/models", org["value"]).status_code == 200
    only_expired = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?status=expired", admin).json()["data"]
    assert [k["id"] for k in only_expired] == [expired["id"]]
    workspace = listed["default-workspace"]["scope"]["workspace_id"]
    in_default = anthropic_req(emulator, "GET", "/v1/organizations/api_keys?workspace_id=" + workspace, admin).json()
    assert org["id"] not in [k["id"] for k in in_default["data"]] and default["id"] in [k["id"] for k in in_default["data"]]


def test_behaviour_switches_are_validated_and_reset(emulator):
    with pytest.raises(RuntimeError, match="must be one of"):
        emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "sometimes"})
    with pytest.raises(RuntimeError, match="unknown behaviour"):
        emulator.control("POST", "behaviour", {"colour": "red"})
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "allow"})
    emulator.control("POST", "reset")
    expected = {"openai_service_account_key_delete": "refuse", "openai_restricted_status": 401,
                "openai_new_key_scopes": "all"}
    assert emulator.control("GET", "behaviour") == expected


# -- Cloudflare Workers secrets and the simulated Worker -----------------------

def cf_req(emulator, method, worker, token=None, name=None, **kwargs):
    path = "/accounts/%s/workers/scripts/%s/secrets" % (worker["account_id"], worker["script"])
    if name:
        path += "/" + name
    headers = {} if token is None else {"Authorization": "Bearer " + token}
    return HTTP.request(method, emulator.base_url("cloudflare") + path, headers=headers, timeout=5.0, **kwargs)


def test_cloudflare_secret_put_makes_a_deployment_and_never_returns_the_value(emulator):
    old = make_key(emulator, "anthropic")
    new = make_key(emulator, "anthropic")
    worker = emulator.worker("signer", "anthropic", old["value"])
    assert HTTP.get(worker["health_url"]).json() == {"live": True, "fingerprint": old["fingerprint"]}
    assert HTTP.get(worker["traffic_url"]).status_code == 200

    resp = cf_req(emulator, "PUT", worker, worker["api_token"],
                  json={"name": "ANTHROPIC_API_KEY", "text": new["value"], "type": "secret_text"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True, "errors": [], "messages": [],
                           "result": {"name": "ANTHROPIC_API_KEY", "type": "secret_text"}}
    assert re.match(r"^[0-9a-f]{16}-[A-Z]{3}$", resp.headers["cf-ray"])
    assert new["value"] not in resp.text
    listed = cf_req(emulator, "GET", worker, worker["api_token"]).json()
    assert listed["result"] == [{"name": "ANTHROPIC_API_KEY", "type": "secret_text"}]

    state = emulator.worker_state("signer")
    assert state["deployments"] == 2 and state["puts"] == 2
    assert state["secrets"] == [{"name": "ANTHROPIC_API_KEY", "type": "secret_text",
                                 "fingerprint": new["fingerprint"], "deployment": 2}]
    assert state["serving_fingerprint"] == new["fingerprint"]
    assert HTTP.get(worker["health_url"]).json() == {"live": True, "fingerprint": new["fingerprint"]}
    assert_no_secret(json.dumps(emulator.control("GET", "state")), old["value"], new["value"])
    assert_no_secret(open(emulator.log_path).read(), old["value"], new["value"], worker["api_token"])


@pytest.mark.parametrize("token, body, status, code", [
    (None, {"name": "K", "text": "v", "type": "secret_text"}, 400, 6003),
    ("not-the-token", {"name": "K", "text": "v", "type": "secret_text"}, 403, 10000),
    ("TOKEN", {"name": "K", "text": "v"}, 400, 10001),
    ("TOKEN", {"name": "K", "text": "v", "type": "secret_text", "value": "v"}, 400, 10001),
    ("TOKEN", {"name": "K", "text": "", "type": "secret_text"}, 400, 10001),
    ("TOKEN", {"name": "1-bad", "text": "v", "type": "secret_text"}, 400, 10001),
    ("TOKEN", {"name": "K", "text": "v" * 5121, "type": "secret_text"}, 400, 10054),
])
def test_cloudflare_refuses_what_the_api_refuses(emulator, token, body, status, code):
    worker = emulator.worker("refuser", "openai")
    resp = cf_req(emulator, "PUT", worker, worker["api_token"] if token == "TOKEN" else token, json=body)
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert data["success"] is False and data["result"] is None
    assert data["errors"][0]["code"] == code
    assert emulator.worker_state("refuser")["deployments"] == 0


def test_cloudflare_unknown_script_and_other_account(emulator):
    one = emulator.worker("one", "openai")
    two = emulator.worker("two", "openai")
    missing = dict(one, script="nope")
    assert cf_req(emulator, "GET", missing, one["api_token"]).json()["errors"][0]["code"] == 10007
    # A token is good for its own account only.
    assert cf_req(emulator, "GET", two, one["api_token"]).status_code == 403
    assert cf_req(emulator, "GET", one, one["api_token"], name="NOPE").json()["errors"][0]["code"] == 10056
    assert HTTP.post(emulator.base_url("cloudflare") + "/accounts/%s/workers/scripts/one/secrets"
                     % one["account_id"], headers={"Authorization": "Bearer " + one["api_token"]}).status_code == 405


def test_worker_that_never_picks_up_keeps_serving_the_old_key(emulator):
    old = make_key(emulator, "openai")
    new = make_key(emulator, "openai")
    worker = emulator.worker("stuck", "openai", old["value"], pickup="never")
    assert cf_req(emulator, "PUT", worker, worker["api_token"],
                  json={"name": "OPENAI_API_KEY", "text": new["value"], "type": "secret_text"}).status_code == 200
    assert HTTP.get(worker["health_url"]).json() == {"live": True, "fingerprint": old["fingerprint"]}
    emulator.control("POST", "cloudflare/worker", {"script": "stuck", "pickup": "deploy"})
    assert HTTP.get(worker["health_url"]).json() == {"live": True, "fingerprint": new["fingerprint"]}


def test_worker_traffic_fails_once_its_key_is_revoked(emulator):
    key = make_key(emulator, "openrouter")
    worker = emulator.worker("revoked", "openrouter", key["value"])
    admin = make_key(emulator, "openrouter", "admin")
    assert bearer_req(emulator, "openrouter", "DELETE", "/keys/" + key["id"], admin["value"]).status_code == 200
    assert HTTP.get(worker["traffic_url"]).status_code == 502
    assert HTTP.get(worker["health_url"]).json() == {"live": False, "fingerprint": key["fingerprint"]}
    assert emulator.worker_state("revoked")["requests"] == {"served": 0, "failed": 1}


def test_cloudflare_faults(emulator):
    worker = emulator.worker("faulty", "openai")
    emulator.control("POST", "faults", {"provider": "cloudflare", "status": 503, "count": 1})
    resp = cf_req(emulator, "GET", worker, worker["api_token"])
    assert resp.status_code == 503 and resp.json()["success"] is False
    assert cf_req(emulator, "GET", worker, worker["api_token"]).status_code == 200
