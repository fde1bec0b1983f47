# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider classes: hints, options and environment, pagination, adopt, status changes, probes."""

from __future__ import annotations

import json
import os
import random
import string
import time

import pytest

httpx = pytest.importorskip("httpx")

from ansible_collections.apikeys.rotation.plugins.module_utils.common import (  # noqa: E402
    RotationError, checked_fingerprint, fingerprint, fingerprints_match, shown_url, url_userinfo)
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import ProviderError, Response  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import (  # noqa: E402
    PROVIDER_NAMES,
    get_provider,
    provider_class,
)
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (  # noqa: E402
    evaluate_health,
    hint_matches,
    iso_time,
    provider_argument_spec,
    resolve_options,
    split_hint,
)

ADMIN = {"anthropic": "sk-ant-admin01-" + "a" * 93 + "AA", "openai": "sk-admin-" + "b" * 60 + "T3BlbkFJ" + "c" * 60,
         "openrouter": "sk-or-v1-" + "d" * 64}


# -- fake keys of every format and recorded JSON ---------------------------------------

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
KEY_CHARS = string.ascii_letters + string.digits + "-_"


def _rand(alphabet, length, seed):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _index in range(length))


def make_keys(seed=0):
    """One fake key of each format in providers.md (random, never real)."""
    return {
        "anthropic_api": "sk-ant-api03-" + _rand(KEY_CHARS, 93, seed) + "AA",
        "anthropic_admin": "sk-ant-admin01-" + _rand(KEY_CHARS, 93, seed + 1) + "AA",
        "openai_project": "sk-proj-" + _rand(KEY_CHARS, 74, seed + 2) + "T3BlbkFJ" + _rand(KEY_CHARS, 74, seed + 3),
        "openai_svcacct": "sk-svcacct-" + _rand(KEY_CHARS, 74, seed + 4) + "T3BlbkFJ" + _rand(KEY_CHARS, 74, seed + 5),
        "openai_admin": "sk-admin-" + _rand(KEY_CHARS, 74, seed + 6) + "T3BlbkFJ" + _rand(KEY_CHARS, 74, seed + 7),
        "openai_legacy": "sk-" + _rand(string.ascii_letters + string.digits, 20, seed + 8) + "T3BlbkFJ"
                         + _rand(string.ascii_letters + string.digits, 20, seed + 9),
        "openrouter": "sk-or-v1-" + _rand("0123456789abcdef", 64, seed + 10),
    }


@pytest.fixture()
def keys():
    return make_keys()


@pytest.fixture(scope="session")
def load_fixture():
    def load(name):
        with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
            return json.load(handle)
    return load


class Api:
    """A mock provider: routes ``(METHOD, path)`` to answers and records every request."""

    def __init__(self, routes):
        self.routes = routes
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        key = (request.method, request.url.path)
        answer = self.routes.get(key)
        if answer is None:
            return httpx.Response(404, json={"error": {"message": "no route %s %s" % key}})
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, list):
            answer = answer.pop(0)
        status, body = answer
        return httpx.Response(status, json=body)

    def calls(self, method=None):
        return [(r.method, r.url.path) for r in self.requests if method is None or r.method == method]


def ok_pages(pages):
    """Answers of successive requests to one route, each a 200 with the next recorded page."""
    return [(200, page) for page in pages]


def make(name, routes, **params):
    api = Api(routes)
    base = {"anthropic": "http://emu/anthropic", "openai": "http://emu/openai/v1",
            "openrouter": "http://emu/openrouter/api/v1"}[name]
    # the mock transport answers any host; http:// to a non-loopback host needs the explicit opt-in
    values = {"provider": name, "base_url": base, "admin_key": ADMIN[name], "retries": 1, "allow_insecure_http": True}
    values.update(params)
    provider = get_provider(values, environ={}, transport=httpx.MockTransport(api), sleep=lambda s: None)
    return provider, api


# -- hints -----------------------------------------------------------------------

@pytest.mark.parametrize("hint, head, tail", [
    ("sk-ant-api03-R2D...igAA", "sk-ant-api03-R2D", "igAA"),
    ("sk-abc...xyz", "sk-abc", "xyz"),
    ("sk-or-v1-0e6...1c9", "sk-or-v1-0e6", "1c9"),
    ("sk-proj-ab****cd", "sk-proj-ab", "cd"),
    ("sk-pro\u2026xyz", "sk-pro", "xyz"),
])
def test_split_hint(hint, head, tail):
    assert split_hint(hint) == (head, tail)


def test_split_hint_rejects_non_hints():
    assert split_hint("sk-ant-api03-full") is None
    assert split_hint("...") is None
    assert split_hint(None) is None


@pytest.mark.parametrize("provider, kind", [("anthropic", "anthropic_api"), ("openai", "openai_svcacct"),
                                            ("openai", "openai_project"), ("openrouter", "openrouter")])
def test_each_provider_redacts_the_way_its_listing_shows(keys, provider, kind):
    key = keys[kind]
    hint = provider_class(provider).redact(None, key)
    assert hint_matches(hint, key)
    assert not hint_matches(hint, key[:-1] + ("x" if key[-1] != "x" else "y"))
    if provider == "anthropic":
        assert hint == "sk-ant-api03-" + key[13:16] + "..." + key[-4:]
    elif provider == "openai":
        assert hint == key[:6] + "..." + key[-3:]
    else:
        assert hint == "sk-or-v1-" + key[9:12] + "..." + key[-4:]


def test_hint_matching_is_strict(keys):
    key = keys["anthropic_api"]
    assert hint_matches("%s...%s" % (key[:16], key[-4:]), key)
    assert not hint_matches("%s...%s" % (key[:16], "zzzz"), key)
    assert not hint_matches("sk-ant-api03-QQQ...%s" % key[-4:], key)
    assert not hint_matches("%s...%s" % (key[:16], key[-4:]), None)
    assert not hint_matches(None, key)
    # head and tail may not overlap in a key that is too short for them
    assert not hint_matches("abcd...bcde", "abcde")


# -- option and environment resolution --------------------------------------------

def opts(provider, params=None, environ=None):
    return resolve_options(dict(params or {}), provider_class(provider), environ or {})


def test_defaults_are_the_official_urls():
    assert opts("anthropic").base_url == "https://api.anthropic.com"
    assert opts("openai").base_url == "https://api.openai.com/v1"
    assert opts("openrouter").base_url == "https://openrouter.ai/api/v1"
    resolved = opts("openai")
    assert (resolved.timeout, resolved.retries, resolved.max_retry_wait, resolved.admin_key) == (30.0, 3, 30.0, None)


def test_base_url_env_fallback_and_option_precedence():
    environ = {"OPENAI_BASE_URL": "http://127.0.0.1:8787/openai/v1", "ANTHROPIC_BASE_URL": "https://other"}
    assert opts("openai", environ=environ).base_url == "http://127.0.0.1:8787/openai/v1"
    assert opts("openai", {"base_url": "https://proxy/v1"}, environ).base_url == "https://proxy/v1"
    assert opts("openrouter", environ=environ).base_url == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize("url, allowed, words", [
    ("https://proxy.example.com/v1", False, None),
    ("http://localhost:8787/v1", False, None),
    ("http://[::1]:8787/v1", False, None),
    ("http://127.0.0.2/v1", False, None),
    ("http://proxy.example.com/v1", False, "must be https://"),
    ("http://proxy.example.com/v1", True, None),
    ("http://169.254.169.254/latest", True, "link-local"),
    ("https://169.254.169.254/latest", False, "link-local"),
    ("http://[fe80::1]/v1", True, "link-local"),
    ("https://metadata.google.internal/v1", False, "link-local"),
    ("https://user:s3cret@proxy.example.com/v1", False, None),
    ("ftp://proxy.example.com", False, "must be an https:// URL"),
])
def test_base_url_must_be_https_except_loopback(url, allowed, words):
    params = {"base_url": url, "allow_insecure_http": allowed}
    if words is None:
        assert opts("openai", params).base_url == url
        return
    with pytest.raises(RotationError) as info:
        opts("openai", params)
    assert words in str(info.value) and "Nothing was sent" in str(info.value)


def test_userinfo_never_shown_in_url_errors():
    with pytest.raises(RotationError) as info:
        opts("openai", {"base_url": "http://user:s3cret@proxy.example.com/v1"})
    assert "s3cret" not in str(info.value) and "user:" not in str(info.value)
    assert "http://proxy.example.com/v1" in str(info.value)


@pytest.mark.parametrize("provider, env", [("anthropic", "ANTHROPIC_ADMIN_KEY"), ("openai", "OPENAI_ADMIN_KEY"),
                                           ("openrouter", "OPENROUTER_MANAGEMENT_KEY")])
def test_admin_key_env_then_file(tmp_path, provider, env):
    assert opts(provider, environ={env: " from-env \n"}).admin_key == "from-env"
    assert opts(provider, environ={env: "from-env"}).admin_key_source == env
    assert opts(provider, {"admin_key": "opt"}, {env: "from-env"}).admin_key == "opt"
    secret_file = tmp_path / "admin"
    secret_file.write_text("from-file\n")
    resolved = opts(provider, environ={env + "_FILE": str(secret_file)})
    assert (resolved.admin_key, resolved.admin_key_source) == ("from-file", env + "_FILE")
    assert opts(provider, environ={env: "from-env", env + "_FILE": str(secret_file)}).admin_key == "from-env"


def test_admin_key_file_errors_name_the_variable(tmp_path):
    with pytest.raises(RotationError, match="admin_key: cannot read the file named by OPENAI_ADMIN_KEY_FILE"):
        opts("openai", environ={"OPENAI_ADMIN_KEY_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(RotationError, match="OPENAI_ADMIN_KEY_FILE.*empty"):
        opts("openai", environ={"OPENAI_ADMIN_KEY_FILE": str(empty)})


@pytest.mark.parametrize("params, message", [
    ({"base_url": "ftp://x"}, "base_url must be an http"),
    ({"base_url": "api.openai.com"}, "base_url must be an http"),
    ({"timeout": 0}, "timeout must be greater than 0"),
    ({"retries": -1}, "retries must be 0 or more"),
    ({"max_retry_wait": -1}, "max_retry_wait must be 0 or more"),
])
def test_bad_options_are_named(params, message):
    with pytest.raises(RotationError, match=message):
        opts("openai", params)


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(RotationError, match="provider must be one of anthropic, openai, openrouter, got 'mistral'"):
        provider_class("mistral")


def test_argument_spec():
    spec = provider_argument_spec(PROVIDER_NAMES)
    assert spec["admin_key"]["no_log"] is True
    assert spec["provider"] == {"type": "str", "required": True, "choices": ["anthropic", "openai", "openrouter"]}
    assert provider_argument_spec(PROVIDER_NAMES, provider_required=False)["provider"]["required"] is False


def test_missing_admin_key_names_option_and_variables():
    provider = get_provider({"provider": "openrouter"}, environ={})
    with pytest.raises(RotationError, match="set the admin_key option or the environment variable "
                                            "OPENROUTER_MANAGEMENT_KEY \\(or OPENROUTER_MANAGEMENT_KEY_FILE"):
        provider.find()


# -- key formats -------------------------------------------------------------------------

@pytest.mark.parametrize("provider, good, bad", [
    ("anthropic", "anthropic_api", ["anthropic_admin", "openai_project", "openrouter"]),
    ("openai", "openai_svcacct", ["openai_admin", "anthropic_api", "openrouter"]),
    ("openai", "openai_project", ["anthropic_admin"]),
    ("openai", "openai_legacy", []),
    ("openrouter", "openrouter", ["openai_project", "anthropic_api"]),
])
def test_validate_key(keys, provider, good, bad):
    prov = get_provider({"provider": provider}, environ={})
    assert prov.validate_key(keys[good]) == keys[good]
    for kind in bad:
        with pytest.raises(RotationError) as info:
            prov.validate_key(keys[kind])
        text = str(info.value)
        assert text.startswith("api_key (fingerprint %s) is not a" % fingerprint(keys[kind]))
        assert "expected " in text and "looks like" in text
        assert keys[kind] not in text and keys[kind][-8:] not in text
    with pytest.raises(RotationError, match="api_key is empty"):
        prov.validate_key("  ")


# -- Anthropic ------------------------------------------------------------------------

def anthropic_routes(load_fixture, extra=None):
    pages = load_fixture("pages.json")["anthropic_keys"]
    routes = {("GET", "/anthropic/v1/organizations/api_keys"): ok_pages(pages)}
    routes.update(extra or {})
    return routes


def anthropic_key_with_hint(keys, head3, tail4):
    key = keys["anthropic_api"]
    return "sk-ant-api03-" + head3 + key[16:-4] + tail4


def test_anthropic_lists_every_page_with_admin_headers(load_fixture):
    provider, api = make("anthropic", anthropic_routes(load_fixture))
    found = provider.find()
    assert [r.id for r in found] == ["apikey_01AAAAAAAAAAAAAAAAAAAAAAAA", "apikey_01BBBBBBBBBBBBBBBBBBBBBBBB",
                                     "apikey_01CCCCCCCCCCCCCCCCCCCCCCCC"]
    assert found[0].as_dict() == {"id": "apikey_01AAAAAAAAAAAAAAAAAAAAAAAA", "name": "console-made", "status": "active",
                                  "created_at": "2026-01-02T03:04:05.000000Z", "redacted_hint": "sk-ant-api03-R2D...igAA",
                                  "workspace_id": "wrkspc_01WWWWWWWWWWWWWWWWWWWWWW"}
    first, second = api.requests
    assert first.headers["x-api-key"] == ADMIN["anthropic"]
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "after_id" not in first.url.params
    assert second.url.params["after_id"] == "apikey_01BBBBBBBBBBBBBBBBBBBBBBBB"


def test_anthropic_find_by_name_and_workspace_filter(load_fixture):
    provider, api = make("anthropic", anthropic_routes(load_fixture), anthropic_workspace_id="wrkspc_01W")
    assert [r.id for r in provider.find(name="old")] == ["apikey_01CCCCCCCCCCCCCCCCCCCCCCCC"]
    assert api.requests[0].url.params["workspace_id"] == "wrkspc_01W"


def test_anthropic_find_by_id_absent_is_empty():
    provider, _api = make("anthropic", {})
    assert provider.find(key_id="apikey_01NOPE") == []


def test_anthropic_adopt_single_match_renames(load_fixture, keys):
    value = anthropic_key_with_hint(keys, "R2D", "igAA")
    renamed = {"id": "apikey_01AAAAAAAAAAAAAAAAAAAAAAAA", "name": "wishlist-r1", "status": "active",
               "partial_key_hint": "sk-ant-api03-R2D...igAA", "created_at": "2026-01-02T03:04:05Z"}
    provider, api = make("anthropic", anthropic_routes(load_fixture, {
        ("POST", "/anthropic/v1/organizations/api_keys/apikey_01AAAAAAAAAAAAAAAAAAAAAAAA"): (200, renamed)}))
    created = provider.adopt(value, "wishlist-r1")
    assert created.changed is True
    assert (created.record.id, created.record.name) == ("apikey_01AAAAAAAAAAAAAAAAAAAAAAAA", "wishlist-r1")
    assert created.fingerprint == fingerprint(value)
    post = [r for r in api.requests if r.method == "POST"]
    assert len(post) == 1 and json.loads(post[0].content) == {"name": "wishlist-r1"}


def test_anthropic_adopt_check_mode_sends_no_write(load_fixture, keys):
    provider, api = make("anthropic", anthropic_routes(load_fixture))
    created = provider.adopt(anthropic_key_with_hint(keys, "R2D", "igAA"), "wishlist-r1", check_mode=True)
    assert created.changed is True and created.record.name == "wishlist-r1"
    assert api.calls("POST") == []


def test_anthropic_readopt_by_name_is_unchanged(load_fixture, keys):
    provider, api = make("anthropic", anthropic_routes(load_fixture))
    created = provider.adopt(anthropic_key_with_hint(keys, "xYz", "q9AA"), "wishlist-20260101")
    assert created.changed is False and created.record.id == "apikey_01BBBBBBBBBBBBBBBBBBBBBBBB"
    assert api.calls("POST") == []


def test_anthropic_adopt_several_matches_says_how_to_fix(load_fixture, keys):
    pages = load_fixture("pages.json")["anthropic_keys"]
    twin = dict(pages[0]["data"][0], id="apikey_01DDDDDDDDDDDDDDDDDDDDDDDD", name="other")
    pages[1]["data"].append(twin)
    provider, api = make("anthropic", {("GET", "/anthropic/v1/organizations/api_keys"): ok_pages(pages)})
    value = anthropic_key_with_hint(keys, "R2D", "igAA")
    with pytest.raises(RotationError) as info:
        provider.adopt(value, "wishlist-r2")
    text = str(info.value)
    assert "2 Anthropic API keys share the hint sk-ant-api03-R2D...igAA" in text
    assert "rename it to 'wishlist-r2' in the Anthropic Console" in text
    assert value not in text and api.calls("POST") == []


def test_anthropic_adopt_no_match_and_archived_match(load_fixture, keys):
    provider, _api = make("anthropic", anthropic_routes(load_fixture))
    with pytest.raises(RotationError, match="no Anthropic API key has the hint sk-ant-api03-Zzz"):
        provider.adopt(anthropic_key_with_hint(keys, "Zzz", "zzAA"), "n")
    pages = load_fixture("pages.json")["anthropic_keys"]
    pages[0]["data"] = [pages[0]["data"][1]]
    provider, _api = make("anthropic", {("GET", "/anthropic/v1/organizations/api_keys"): ok_pages(pages)})
    with pytest.raises(RotationError, match="is archived: it can no longer be used"):
        provider.adopt(anthropic_key_with_hint(keys, "R2D", "igAA"), "n")


def test_anthropic_adopt_rejects_wrong_format_before_any_request(keys):
    provider, api = make("anthropic", {})
    with pytest.raises(RotationError, match="api_key .* is not an Anthropic key.*looks like an Anthropic admin key"):
        provider.adopt(keys["anthropic_admin"], "n")
    assert api.requests == []


def anthropic_key(status):
    return {"id": "apikey_01X", "name": "n", "status": status, "partial_key_hint": "sk-ant-api03-abc...wxAA"}


@pytest.mark.parametrize("state, current, sent, changed", [
    ("disabled", "active", "inactive", True),
    ("deleted", "inactive", "archived", True),
    ("active", "inactive", "active", True),
    ("disabled", "inactive", None, False),
    ("deleted", "archived", None, False),
])
def test_anthropic_status_mapping(state, current, sent, changed):
    def update(request):
        return 200, anthropic_key(json.loads(request.content)["status"])
    path = "/anthropic/v1/organizations/api_keys/apikey_01X"
    provider, api = make("anthropic", {("GET", path): (200, anthropic_key(current)), ("POST", path): update})
    result = provider.set_status("apikey_01X", state)
    assert result.changed is changed and result.previous_status == current
    posts = [json.loads(r.content) for r in api.requests if r.method == "POST"]
    assert posts == ([{"status": sent}] if sent else [])


def test_anthropic_archived_is_final():
    path = "/anthropic/v1/organizations/api_keys/apikey_01X"
    provider, api = make("anthropic", {("GET", path): (200, anthropic_key("archived"))})
    with pytest.raises(RotationError, match="archived, which is final"):
        provider.set_status("apikey_01X", "active")
    assert api.calls("POST") == []


def test_anthropic_delete_of_unknown_key_is_already_done():
    provider, _api = make("anthropic", {})
    result = provider.set_status("apikey_01GONE", "deleted")
    assert (result.changed, result.previous_status, result.status) == (False, "absent", "absent")
    with pytest.raises(RotationError, match="no Anthropic API key has the id apikey_01GONE"):
        provider.set_status("apikey_01GONE", "disabled")


def test_anthropic_cannot_create():
    provider, _api = make("anthropic", {})
    assert provider.capabilities.as_dict() == {"can_create": False, "can_disable": True, "can_delete": True}
    with pytest.raises(RotationError, match="no API to create keys"):
        provider.create("n")


# -- OpenAI ------------------------------------------------------------------------------

OPENAI_KEYS = "/openai/v1/organization/projects/proj_1/api_keys"


def test_openai_lists_every_page_and_reads_owners(load_fixture):
    pages = load_fixture("pages.json")["openai_keys"]
    provider, api = make("openai", {("GET", OPENAI_KEYS): ok_pages(pages)}, openai_project_id="proj_1")
    found = provider.find()
    assert [r.as_dict() for r in found] == [
        {"id": "key_aaaaaaaaaaaaaaaa", "name": "search-1", "status": "active", "created_at": "2026-01-01T00:00:00Z",
         "redacted_hint": "sk-svc...abc", "project_id": "proj_1", "service_account_id": "svc_acct_abc",
         "service_account_name": "search-bot"},
        {"id": "key_bbbbbbbbbbbbbbbb", "name": "laptop", "status": "active", "created_at": "2026-01-02T00:00:00Z",
         "redacted_hint": "sk-pro...xyz", "project_id": "proj_1", "user_id": "user_abc"},
    ]
    assert api.requests[0].headers["authorization"] == "Bearer " + ADMIN["openai"]
    assert api.requests[0].url.params["limit"] == "100"
    assert api.requests[1].url.params["after"] == "key_aaaaaaaaaaaaaaaa"


def test_openai_find_by_name_matches_key_or_its_service_account(load_fixture):
    pages = load_fixture("pages.json")["openai_keys"]
    provider, _api = make("openai", {("GET", OPENAI_KEYS): ok_pages(pages)}, openai_project_id="proj_1")
    assert [r.id for r in provider.find(name="search-bot")] == ["key_aaaaaaaaaaaaaaaa"]


def test_openai_needs_a_project():
    provider, api = make("openai", {})
    with pytest.raises(RotationError, match="openai_project_id is required for provider=openai"):
        provider.find()
    assert api.requests == []


def test_openai_create_for_a_service_account(keys):
    value = keys["openai_svcacct"]
    answer = {"object": "organization.project.service_account.api_key", "value": value, "name": "search-2",
              "created_at": 1767225600, "id": "key_new"}
    path = "/openai/v1/organization/projects/proj_1/service_accounts/svc_acct_abc/api_keys"
    provider, api = make("openai", {("POST", path): (200, answer)}, openai_project_id="proj_1",
                         openai_service_account_id="svc_acct_abc")
    created = provider.create("search-2")
    assert created.value == value
    assert created.record.as_dict() == {"id": "key_new", "name": "search-2", "status": "active", "key_name": "search-2",
                                        "created_at": "2026-01-01T00:00:00Z",
                                        "redacted_hint": value[:6] + "..." + value[-3:],
                                        "project_id": "proj_1", "service_account_id": "svc_acct_abc"}
    assert json.loads(api.requests[0].content) == {"name": "search-2"}


def test_openai_create_makes_a_service_account_without_one(load_fixture, keys):
    answer = load_fixture("pages.json")["openai_service_account_created"]
    answer["api_key"]["value"] = keys["openai_svcacct"]
    provider, api = make("openai", {("POST", "/openai/v1/organization/projects/proj_1/service_accounts"): (200, answer)},
                         openai_project_id="proj_1")
    created = provider.create("search-2")
    assert created.record.id == "key_newnewnewnewnew"
    assert created.record.extra["service_account_id"] == "svc_acct_new"
    assert api.calls() == [("POST", "/openai/v1/organization/projects/proj_1/service_accounts")]


def test_openai_has_no_disable_and_sends_nothing():
    provider, api = make("openai", {}, openai_project_id="proj_1")
    assert provider.capabilities.as_dict() == {"can_create": True, "can_disable": False, "can_delete": True}
    with pytest.raises(RotationError, match="OpenAI has no way to disable a key .*Nothing was changed"):
        provider.set_status("key_1", "disabled")
    assert api.requests == []


def openai_key(key_id, account=None, name="k"):
    if account:
        owner = {"type": "service_account",
                 "service_account": {"id": account, "name": "sa-" + account, "role": "member", "created_at": 1}}
    else:
        owner = {"type": "user",
                 "user": {"id": "user_1", "name": "Ada", "email": "a@example.com", "role": "owner", "created_at": 1}}
    return {"object": "organization.project.api_key", "redacted_value": "sk-svc...abc", "name": name, "id": key_id,
            "created_at": 1, "last_used_at": None, "owner_project_access": "active", "owner": owner}


REFUSED = (400, {"error": {"message": "The API key belongs to a service account and cannot be deleted.",
                           "type": "invalid_request_error", "param": None, "code": None}})
DELETED = (200, {"object": "organization.project.api_key.deleted", "id": "key_1", "deleted": True})
SA_PATH = "/openai/v1/organization/projects/proj_1/service_accounts/"


@pytest.mark.parametrize("reading", ["refuse", "allow"])
@pytest.mark.parametrize("case, owner, listed, configured, expect", [
    # a key on a service account of its own: the account goes, whatever the per-key DELETE would do
    ("own account", "svc_acct_old", [("key_1", "svc_acct_old"), ("key_2", "svc_acct_new")], None, "account"),
    # a second key on openai_service_account_id: never the account (it holds the live key)
    ("configured account", "svc_acct_shared", [("key_1", "svc_acct_shared"), ("key_2", "svc_acct_shared")],
     "svc_acct_shared", "key"),
    # an account that holds another key too, not configured: never the account
    ("shared account", "svc_acct_x", [("key_1", "svc_acct_x"), ("key_9", "svc_acct_x")], None, "key"),
    # a user's key: the per-key DELETE, which OpenAI allows for user keys
    ("user key", None, [("key_1", None)], None, "user"),
])
def test_openai_revoke_is_safe_under_both_readings(case, owner, listed, configured, expect, reading):
    keys_page = {"object": "list", "data": [openai_key(k, a) for k, a in listed], "first_id": listed[0][0],
                 "last_id": listed[-1][0], "has_more": False}
    sa_deleted = {"object": "organization.project.service_account.deleted", "id": owner, "deleted": True}
    routes = {("GET", OPENAI_KEYS + "/key_1"): (200, openai_key("key_1", owner)),
              ("GET", OPENAI_KEYS): lambda request: (200, keys_page),
              ("DELETE", OPENAI_KEYS + "/key_1"): REFUSED if (reading == "refuse" and owner) else DELETED,
              ("DELETE", SA_PATH + str(owner)): (200, sa_deleted)}
    params = {"openai_project_id": "proj_1"}
    if configured:
        params["openai_service_account_id"] = configured
    provider, api = make("openai", routes, **params)
    if expect == "key" and reading == "refuse":
        with pytest.raises(RotationError) as info:
            provider.set_status("key_1", "deleted")
        message = str(info.value)
        assert "key_1 STAYS ACTIVE" in message and owner in message and "OpenAI dashboard" in message
        assert info.value.details["kept_active"] is True and info.value.details["status"] == "active"
        assert ("DELETE", SA_PATH + owner) not in api.calls("DELETE")
        return
    result = provider.set_status("key_1", "deleted")
    assert (result.changed, result.previous_status, result.status) == (True, "active", "deleted")
    deletes = api.calls("DELETE")
    if expect == "account":
        assert deletes == [("DELETE", SA_PATH + owner)]
        assert result.extra["service_account_deleted"] == owner
    else:
        assert deletes == [("DELETE", OPENAI_KEYS + "/key_1")]
        assert "service_account_deleted" not in result.extra
    # the list lookups asked for every enabled key
    for request in api.requests:
        if request.method == "GET" and request.url.path == OPENAI_KEYS:
            assert request.url.params["owner_project_access"] == "any"


def test_openai_revoke_in_check_mode_sends_no_delete():
    page = {"object": "list", "data": [openai_key("key_1", "svc_acct_old")], "first_id": "key_1", "last_id": "key_1",
            "has_more": False}
    provider, api = make("openai", {("GET", OPENAI_KEYS + "/key_1"): (200, openai_key("key_1", "svc_acct_old")),
                                    ("GET", OPENAI_KEYS): (200, page)}, openai_project_id="proj_1")
    result = provider.set_status("key_1", "deleted", check_mode=True)
    assert (result.changed, result.status) == (True, "deleted")
    assert api.calls("DELETE") == []


def test_openai_already_deleted_and_not_reactivated():
    gone, _api = make("openai", {}, openai_project_id="proj_1")
    result = gone.set_status("key_1", "deleted")
    assert (result.changed, result.previous_status) == (False, "absent")
    with pytest.raises(RotationError, match="cannot be made active again"):
        gone.set_status("key_1", "active")


def test_openai_orphan_with_own_service_account_removes_the_account(load_fixture):
    pages = load_fixture("pages.json")["openai_keys"]
    sa_path = "/openai/v1/organization/projects/proj_1/service_accounts/svc_acct_abc"
    provider, api = make("openai", {("GET", OPENAI_KEYS): ok_pages(pages) + ok_pages(pages),
                                    ("GET", OPENAI_KEYS + "/key_aaaaaaaaaaaaaaaa"): (200, pages[0]["data"][0]),
                                    ("DELETE", sa_path): (200, {"deleted": True})},
                         openai_project_id="proj_1")
    orphan = provider.find(name="search-bot")[0]
    provider.remove_orphan(orphan, "search-bot")
    assert api.calls("DELETE") == [("DELETE", sa_path)]


@pytest.mark.parametrize("status, body, live, restricted, code, words", [
    (401, {"error": {"message": "Incorrect API key provided: sk-svc***abcd.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}}, False, False, "invalid_api_key", "key was rejected"),
    (401, {"error": {"message": "You have insufficient permissions for this operation. Missing scopes: "
                                "api.model.read.", "type": "invalid_request_error", "param": None, "code": None}},
     True, True, "invalid_request_error", "restricted key"),
    (403, {"error": {"message": "You have insufficient permissions for this operation. Missing scopes: "
                                "api.model.read", "type": "invalid_request_error", "param": None, "code": None}},
     True, True, "invalid_request_error", "restricted key"),
    (401, {"error": {"message": "Your IP is not allowed.", "type": "invalid_request_error", "param": None,
                     "code": "ip_not_authorized"}}, False, False, "ip_not_authorized", "other than the key itself"),
    (401, {"error": {"message": "No such organization.", "type": "invalid_request_error", "param": None,
                     "code": "invalid_organization"}}, False, False, "invalid_organization", "organisation"),
])
def test_openai_probe_reads_refusals(keys, status, body, live, restricted, code, words):
    provider, _api = make("openai", {("GET", "/openai/v1/models"): (status, body)})
    result = provider.probe(keys["openai_svcacct"]).as_dict()
    assert (result["live"], result["restricted"], result["code"]) == (live, restricted, code)
    assert words in result["reason"] and result["status"] == status


# -- OpenRouter --------------------------------------------------------------------------

def test_openrouter_pages_by_offset(load_fixture):
    template = load_fixture("pages.json")["openrouter_key"]
    all_keys = [dict(template, hash="%064x" % i, name="k%d" % i) for i in range(130)]

    def listing(request):
        offset = int(request.url.params.get("offset", "0"))
        assert request.url.params["include_disabled"] == "true"
        return 200, {"data": all_keys[offset:offset + 100]}
    provider, api = make("openrouter", {("GET", "/openrouter/api/v1/keys"): listing})
    found = provider.find()
    assert len(found) == 130 and found[129].name == "k129"
    assert [r.url.params.get("offset") for r in api.requests] == [None, "100"]


def test_openrouter_create_and_status(load_fixture, keys):
    value = keys["openrouter"]
    created_body = load_fixture("pages.json")["openrouter_created"]
    created_body["key"] = value
    created_body["data"]["hash"] = "ab" * 32
    created_body["data"]["label"] = "sk-or-v1-%s...%s" % (value[9:12], value[-3:])
    current = dict(load_fixture("pages.json")["openrouter_key"], hash="ab" * 32)

    def patch(request):
        return 200, {"data": dict(current, disabled=json.loads(request.content)["disabled"])}
    path = "/openrouter/api/v1/keys/" + "ab" * 32
    provider, api = make("openrouter", {("POST", "/openrouter/api/v1/keys"): (201, created_body),
                                        ("GET", path): (200, {"data": current}), ("PATCH", path): patch,
                                        ("DELETE", path): (200, {"deleted": True})})
    created = provider.create("chat-2")
    assert created.value == value and created.record.id == "ab" * 32 and hint_matches(created.record.redacted_hint, value)
    result = provider.set_status("ab" * 32, "disabled")
    assert (result.changed, result.previous_status, result.status) == (True, "active", "disabled")
    assert json.loads([r for r in api.requests if r.method == "PATCH"][0].content) == {"disabled": True}
    result = provider.set_status("ab" * 32, "deleted", check_mode=True)
    assert result.changed is True and api.calls("DELETE") == []
    result = provider.set_status("ab" * 32, "deleted")
    assert api.calls("DELETE") == [("DELETE", path)]


# -- probes ---------------------------------------------------------------------------

@pytest.mark.parametrize("provider_name, kind, path, header", [
    ("anthropic", "anthropic_api", "/anthropic/v1/models", "x-api-key"),
    ("openai", "openai_svcacct", "/openai/v1/models", "authorization"),
    ("openrouter", "openrouter", "/openrouter/api/v1/key", "authorization"),
])
def test_probe_uses_the_zero_token_endpoint(keys, provider_name, kind, path, header):
    provider, api = make(provider_name, {("GET", path): (200, {"data": []})})
    result = provider.probe(keys[kind])
    assert result.live is True and result.status == 200
    assert api.calls() == [("GET", path)]
    assert keys[kind] in api.requests[0].headers[header]
    if provider_name == "anthropic":
        assert api.requests[0].url.params["limit"] == "1"
        assert api.requests[0].headers["anthropic-version"] == "2023-06-01"


def test_probe_never_raises(load_fixture, keys):
    value = keys["openai_svcacct"]
    rejected = load_fixture("errors.json")["openai_401"]["body"]
    rejected["error"]["message"] = "Incorrect API key provided: %s." % value
    provider, _api = make("openai", {("GET", "/openai/v1/models"): (401, rejected)})
    result = provider.probe(value)
    assert (result.live, result.status) == (False, 401)
    assert result.reason.startswith("the key was rejected: HTTP 401 invalid_request_error/invalid_api_key")
    assert value not in result.reason and value[-20:] not in result.reason

    provider, api = make("openai", {("GET", "/openai/v1/models"): (503, {"error": {"message": "down"}})})
    result = provider.probe(value)
    assert (result.live, result.status) == (False, 503) and len(api.requests) == 2
    assert result.reason.startswith("the provider failed: HTTP 503")


def test_probe_network_error_is_not_live(keys):
    def refuse(request):
        raise httpx.ConnectError("connection refused")
    provider = get_provider({"provider": "openrouter", "base_url": "http://127.0.0.1:9", "retries": 0}, environ={},
                            transport=httpx.MockTransport(refuse), sleep=lambda s: None)
    result = provider.probe(keys["openrouter"])
    assert (result.live, result.status) == (False, None)
    assert "ConnectError" in result.reason


# -- application health endpoint ------------------------------------------------------

FP = "sha256:0123456789ab"


def health(status, body):
    return Response(status, {}, body, 5)


@pytest.mark.parametrize("resp, live, reason", [
    (health(200, {"live": True, "fingerprint": FP}), True, "serves the expected key"),
    (health(200, {"live": True, "fingerprint": "sha256:0123456789ab" + "cd" * 26}), True, "serves the expected key"),
    (health(200, {"live": True, "fingerprint": "sha256:ffffffffffff"}), False, "serves the key sha256:ffffffffffff"),
    (health(200, {"live": False, "fingerprint": FP}), False, "not live"),
    (health(200, {"live": "true", "fingerprint": FP}), False, "not live"),
    (health(200, {"live": True}), False, "no valid fingerprint"),
    (health(200, {"live": True, "fingerprint": "sk-or-v1-" + "a" * 64}), False, "no valid fingerprint"),
    (health(200, "ok"), False, "JSON contract"),
    (health(503, {"live": True, "fingerprint": FP}), False, "HTTP 503"),
])
def test_evaluate_health(resp, live, reason):
    result = evaluate_health(resp, None, FP, time.monotonic())
    assert result["live"] is live
    assert reason in result["reason"]
    assert "sk-or-v1" not in json.dumps(result)


def test_evaluate_health_network_error():
    result = evaluate_health(None, ProviderError("connection refused", provider="health_url"), FP, time.monotonic())
    assert result["live"] is False and result["status"] is None
    assert "did not answer" in result["reason"]


def test_fingerprints_match():
    assert fingerprints_match(FP, FP.upper().replace("SHA256", "sha256"))
    assert fingerprints_match(FP, FP + "cd" * 26)
    assert not fingerprints_match(FP, "sha256:0123456789ac")
    assert not fingerprints_match(FP, "sha256:0123")
    assert not fingerprints_match(FP, None)


@pytest.mark.parametrize("given, required, expected", [
    (None, False, ""),
    ("", False, ""),
    (" SHA256:0123456789AB ", False, FP),
    (FP + "cd" * 26, True, FP + "cd" * 26),
])
def test_checked_fingerprint(given, required, expected):
    assert checked_fingerprint(given, "protect_fingerprint", required) == expected


@pytest.mark.parametrize("given, required", [(None, True), ("", True), ("0123456789ab", False), ("sha256:0123", False),
                                             ("md5:0123456789ab", True), ("sha256:" + "g" * 12, False)])
def test_checked_fingerprint_refuses(given, required):
    with pytest.raises(RotationError) as info:
        checked_fingerprint(given, "protect_fingerprint", required)
    shown = ("%r" % given if (given or "").startswith("sha256:")
             else "a value of %d characters that does not look like a fingerprint (not shown)" % len(given or ""))
    assert str(info.value) == ("protect_fingerprint must be sha256: followed by 12 (or 64) hex digits, got %s. "
                               "Nothing was changed." % shown)


def test_checked_fingerprint_never_shows_a_key_given_by_mistake():
    key = "sk-or-v1-" + "5f" * 32
    with pytest.raises(RotationError) as info:
        checked_fingerprint(key, "expected_fingerprint")
    assert key not in str(info.value) and key[:12] not in str(info.value)
    assert "a value of %d characters" % len(key) in str(info.value)
    with pytest.raises(RotationError) as info:
        checked_fingerprint("sha256:" + key, "expected_fingerprint")
    assert key[:12] not in str(info.value), "nor one behind sha256:, longer than a SHA-256"


def test_iso_time():
    assert iso_time(1767225600) == "2026-01-01T00:00:00Z"
    assert iso_time("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert iso_time(None) is None


@pytest.mark.parametrize("url, userinfo", [
    ("https://user:pass@app.example/healthz/key", "user:pass"),
    ("https://token@app.example/", "token"),
    ("https://app.example/a@b", None),
    ("https://app.example/healthz/key", None),
    (None, None),
])
def test_url_userinfo_is_what_a_result_masks(url, userinfo):
    assert url_userinfo(url) == userinfo
    if userinfo:
        assert userinfo not in shown_url(url)
