# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared HTTP client: retry decisions, waits, error parsing, scrubbing, URL joining."""

from __future__ import annotations

import email.utils
import json
import os
import random
import string

import pytest

httpx = pytest.importorskip("httpx")

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import (  # noqa: E402
    HttpClient,
    NetworkError,
    ProviderError,
    backoff,
    join_url,
    parse_error,
    retry_after,
    retry_delay,
    scrub,
    should_retry,
)

NOW = 1767225600.0  # 2026-01-01T00:00:00Z


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


# -- retry decisions ---------------------------------------------------------

@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status):
    assert should_retry(status, {}) is True


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_not_retryable_statuses(status):
    assert should_retry(status, {}) is False


def test_x_should_retry_overrides_both_ways():
    assert should_retry(429, {"x-should-retry": "false"}) is False
    assert should_retry(503, {"X-Should-Retry": "False"}) is False
    assert should_retry(400, {"x-should-retry": "true"}) is True
    assert should_retry(409, {"x-should-retry": "maybe"}) is True


# -- waits -------------------------------------------------------------------

def test_retry_after_ms_wins_over_retry_after():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_seconds():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "0.25"}) == 0.25


def test_retry_after_http_date():
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert retry_after({"retry-after": date}, now=NOW) == pytest.approx(7.0)


def test_retry_after_date_in_the_past_is_zero():
    date = email.utils.formatdate(NOW - 60, usegmt=True)
    assert retry_after({"retry-after": date}, now=NOW) == 0.0


def test_retry_after_garbage_and_absent():
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after-ms": "x"}) is None
    assert retry_after({}) is None
    assert retry_after(None) is None


def test_retry_delay_is_capped_by_max_wait():
    assert retry_delay({"retry-after": "3600"}, 0, max_wait=30) == 30
    assert retry_delay({"retry-after-ms": "120000"}, 0, max_wait=2.5) == 2.5
    assert retry_delay({"retry-after": "1"}, 0, max_wait=30) == 1.0


def test_backoff_grows_and_has_jitter():
    assert backoff(0, rand=lambda: 0.0) == 0.5
    assert backoff(1, rand=lambda: 0.0) == 1.0
    assert backoff(2, rand=lambda: 0.0) == 2.0
    assert backoff(10, rand=lambda: 0.0) == 8.0
    assert backoff(1, rand=lambda: 1.0) == 0.75
    assert retry_delay({}, 3, max_wait=1.0, rand=lambda: 0.0) == 1.0


# -- error parsing -----------------------------------------------------------

def test_parse_error_every_provider_shape(load_fixture):
    for name, case in load_fixture("errors.json").items():
        body = case["body"]
        raw = body if isinstance(body, str) or body is None else json.dumps(body).encode("utf-8")
        error_type, message, request_id = parse_error(case["status"], raw, case["headers"])
        expect = case["expect"]
        assert error_type == expect["error_type"], name
        assert request_id == expect["request_id"], name
        if "message" in expect:
            assert message == expect["message"], name
        else:
            assert scrub(message).startswith(expect["message_startswith"]), name


def test_provider_error_scrubs_and_carries_details(load_fixture):
    case = load_fixture("errors.json")["openai_401"]
    err = ProviderError.from_response("openai", "listing API keys", 401, case["body"], case["headers"])
    assert isinstance(err, RotationError)
    assert err.status == 401
    assert err.error_type == "invalid_request_error/invalid_api_key"
    assert err.request_id == "req_7e1a3c9d2b4f6a8e0c1d3f5a7b9c1e3d"
    assert err.details["status"] == 401 and err.details["request_id"] == err.request_id
    text = str(err)
    assert text.startswith("openai: listing API keys failed: HTTP 401 invalid_request_error/invalid_api_key")
    assert "Incorrect API key provided: sk-[redacted]" in text
    assert "Ab3d" not in text and "****" not in text


def test_provider_error_removes_known_secrets(keys):
    secret = keys["openrouter"]
    err = ProviderError("boom %s and the tail %s" % (secret, "x"), provider="openrouter", secrets=[secret])
    assert secret not in str(err)
    assert fingerprint(secret) in str(err)


# -- scrub -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["anthropic_api", "anthropic_admin", "openai_project", "openai_svcacct",
                                  "openai_admin", "openai_legacy", "openrouter"])
def test_scrub_replaces_every_key_format(keys, kind):
    key = keys[kind]
    text = "Incorrect API key provided: %s. Also 'x-api-key: %s', \"Bearer %s\"" % (key, key, key)
    clean = scrub(text)
    assert key not in clean
    assert key[-12:] not in clean
    assert "[key %s]" % fingerprint(key) in clean
    assert clean.endswith('"Bearer [redacted]"') or "Bearer [key" in clean


@pytest.mark.parametrize("masked, prefix", [
    ("sk-proj-abc1****************************************wxyz", "sk-proj-"),
    ("sk-svcacc**************************************Ab3d", "sk-"),
    ("sk-ant-api03-R2D...igAA", "sk-ant-api03-"),
    ("sk-or-v1-0e6...1c9", "sk-or-v1-"),
    ("sk-abc\u2026xyz", "sk-"),
])
def test_scrub_hides_masked_forms(masked, prefix):
    clean = scrub("key %s was rejected." % masked)
    assert clean == "key %s[redacted] was rejected." % prefix


def test_scrub_keeps_short_prefixes_and_plain_text():
    text = "expected sk-ant-api03- followed by 95 characters; see sk-proj-abc"
    assert scrub(text) == text
    assert scrub(None) == ""
    assert scrub(401) == "401"


def test_scrub_bearer_token_of_any_shape():
    assert scrub("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer [redacted]"


# -- URL joining ---------------------------------------------------------------

@pytest.mark.parametrize("base, path, url", [
    ("https://api.anthropic.com", "/v1/models", "https://api.anthropic.com/v1/models"),
    ("https://api.anthropic.com/", "/v1/models?limit=1", "https://api.anthropic.com/v1/models?limit=1"),
    ("https://api.openai.com/v1", "/models", "https://api.openai.com/v1/models"),
    ("http://127.0.0.1:8787/openai/v1/", "models", "http://127.0.0.1:8787/openai/v1/models"),
    ("http://127.0.0.1:8787/openrouter/api/v1", "/key", "http://127.0.0.1:8787/openrouter/api/v1/key"),
    ("http://app.internal/healthz/key", "", "http://app.internal/healthz/key"),
])
def test_join_url_keeps_the_base_path(base, path, url):
    assert join_url(base, path) == url


# -- the client, on a mock transport -------------------------------------------

class Recorder:
    """A mock transport answering from a list of (status, headers, body) or exceptions."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.Response(status, headers=headers, content=content)


def client(answers, retries=3, max_retry_wait=30.0, base_url="http://emu/openai/v1"):
    recorder = Recorder(answers)
    waits = []
    http = HttpClient(base_url, "openai", retries=retries, max_retry_wait=max_retry_wait,
                      transport=httpx.MockTransport(recorder), sleep=waits.append, rand=lambda: 0.0)
    return http, recorder, waits


def test_client_joins_base_path_on_the_wire():
    http, recorder, _waits = client([(200, {}, {"data": []})])
    http.request("GET", "/models", "probe")
    assert str(recorder.requests[0].url) == "http://emu/openai/v1/models"


def test_client_retries_429_with_retry_after_then_succeeds():
    http, recorder, waits = client([(429, {"retry-after": "2"}, {"error": {"message": "slow down"}}),
                                    (200, {}, {"ok": True})])
    resp = http.request("GET", "/models", "probe")
    assert resp.status == 200 and resp.body == {"ok": True}
    assert len(recorder.requests) == 2
    assert waits == [2.0]
    assert http.stats == {"requests": 2, "retries": 1, "retry_wait": 2.0}


def test_client_caps_retry_after_and_uses_ms_header():
    answers = [(529, {"retry-after": "600"}, {}), (503, {"retry-after-ms": "250"}, {}), (200, {}, {})]
    http, _rec, waits = client(answers, max_retry_wait=5)
    http.request("GET", "/x", "x")
    assert waits == [5.0, 0.25]


def test_client_backoff_without_header():
    http, _rec, waits = client([(500, {}, {}), (502, {}, {}), (200, {}, {})])
    http.request("GET", "/x", "x")
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_never_retries_client_errors(status):
    http, recorder, waits = client([(status, {}, {"error": {"message": "no"}}), (200, {}, {})])
    with pytest.raises(ProviderError) as info:
        http.request("GET", "/x", "reading x")
    assert info.value.status == status
    assert len(recorder.requests) == 1 and waits == []


def test_client_x_should_retry_false_stops_a_429():
    http, recorder, _waits = client([(429, {"x-should-retry": "false"}, {}), (200, {}, {})])
    with pytest.raises(ProviderError):
        http.request("GET", "/x", "x")
    assert len(recorder.requests) == 1


def test_client_gives_up_after_retries():
    http, recorder, waits = client([(503, {}, {})] * 3, retries=2)
    resp = http.send("GET", "/x", "x")
    assert resp.status == 503
    assert len(recorder.requests) == 3 and len(waits) == 2


def test_client_retries_timeouts_then_raises_network_error():
    answers = [httpx.ReadTimeout("timed out"), httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")]
    http, recorder, _waits = client(answers, retries=2)
    with pytest.raises(NetworkError) as info:
        http.send("GET", "/x", "reading x")
    assert len(recorder.requests) == 3
    assert info.value.status is None and info.value.error_type == "network_error"
    assert "ConnectTimeout" in str(info.value)


def test_client_does_not_resend_a_create_after_a_read_timeout():
    http, recorder, _waits = client([httpx.ReadTimeout("timed out"), (200, {}, {})])
    with pytest.raises(NetworkError):
        http.send("POST", "/keys", "creating key", json_body={"name": "x"})
    assert len(recorder.requests) == 1


def test_client_resends_a_create_after_a_connect_error_or_429():
    http, recorder, _waits = client([httpx.ConnectError("refused"), (429, {}, {}), (201, {}, {"data": {}})])
    resp = http.request("POST", "/keys", "creating key", json_body={"name": "x"})
    assert resp.status == 201 and len(recorder.requests) == 3


def test_client_error_message_never_holds_the_key(keys):
    key = keys["openai_project"]
    body = {"error": {"message": "Incorrect API key provided: %s." % key, "type": "invalid_request_error",
                      "code": "invalid_api_key"}}
    http, _rec, _waits = client([(401, {"x-request-id": "req_1"}, body)])
    http.add_secret(key)
    with pytest.raises(ProviderError) as info:
        http.request("GET", "/models", "probe", headers={"authorization": "Bearer " + key})
    assert key not in str(info.value) and key[-20:] not in str(info.value)
    assert info.value.request_id == "req_1"


def test_non_json_body_is_kept_as_text():
    http, _rec, _waits = client([(200, {}, b"plain")])
    assert http.send("GET", "/x", "x").body == "plain"


def test_one_tls_context_per_ca_setting(monkeypatch, tmp_path):
    """The CA bundle is loaded once per process; a task environment naming another bundle gets its own context."""
    from ansible_collections.apikeys.rotation.plugins.module_utils import http_client  # pylint: disable=import-outside-toplevel

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = http_client.ssl_context(True)
    assert http_client.ssl_context(True) is default
    assert http_client.ssl_context(False) is not default and http_client.ssl_context(False).verify_mode == 0
    import shutil  # pylint: disable=import-outside-toplevel

    import certifi  # pylint: disable=import-outside-toplevel

    bundle = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    other = http_client.ssl_context(True)
    assert other is not default and http_client.ssl_context(True) is other
    marker = object()
    assert http_client.ssl_context(marker) is marker
