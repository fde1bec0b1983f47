# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""api_key_probe run in-process against mock transports: consecutive successes and their limits."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest

httpx = pytest.importorskip("httpx")

# pylint: disable=wrong-import-position
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.modules import api_key_probe  # noqa: E402

KEY = "sk-or-v1-" + "0123456789abcdef" * 4
FP = "sha256:0123456789ab"
BASE = "http://127.0.0.1:9/api/v1"


class Answers:
    """Answers one request after the other from a list of (status, JSON body); records each request."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(status, json=body)


@pytest.fixture()
def sleeps(monkeypatch):
    """Every wait of the module, recorded instead of slept."""
    waited = []
    monkeypatch.setattr(api_key_probe.time, "sleep", waited.append)
    return waited


@pytest.fixture()
def provider_answers(monkeypatch):
    """Route the module's provider requests to a list of answers."""
    def install(answers):
        api = Answers(answers)
        real = api_key_probe.get_provider
        monkeypatch.setattr(api_key_probe, "get_provider", functools.partial(
            real, environ={}, transport=httpx.MockTransport(api), sleep=lambda s: None))
        return api
    return install


@pytest.fixture()
def health_answers(monkeypatch):
    """Route the module's health_url requests to a list of answers."""
    def install(answers):
        api = Answers(answers)
        monkeypatch.setattr(api_key_probe, "HttpClient", functools.partial(
            api_key_probe.HttpClient, transport=httpx.MockTransport(api), sleep=lambda s: None))
        return api
    return install


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            api_key_probe.main()
    return json.loads(capsys.readouterr().out)


def provider_args(**extra):
    args = {"provider": "openrouter", "api_key": KEY, "base_url": BASE, "retries": 0}
    args.update(extra)
    return args


OK = (200, {"data": {"label": "k"}})
REJECTED = (401, {"error": {"code": 401, "message": "User not found."}})


# -- the loop on its own ----------------------------------------------------------------

def outcomes(*lives):
    answers = [{"live": live, "reason": "ok" if live else "down %d" % index} for index, live in enumerate(lives)]
    calls = []

    def probe_once():
        calls.append(1)
        return dict(answers[len(calls) - 1])
    return probe_once, calls


def test_consecutive_all_succeed_waits_between_probes_only():
    probe_once, calls = outcomes(True, True, True)
    waited = []
    result = api_key_probe.consecutive(probe_once, 3, 2.5, sleep=waited.append)
    assert (result["live"], result["probes"], result["successes"], result["first_failure"]) == (True, 3, 3, None)
    assert len(calls) == 3 and waited == [2.5, 2.5]
    assert result["reason"] == "ok (3 of 3 consecutive probes)"


def test_consecutive_stops_at_the_first_failure():
    probe_once, calls = outcomes(True, False, True)
    waited = []
    result = api_key_probe.consecutive(probe_once, 3, 1, sleep=waited.append)
    assert (result["live"], result["probes"], result["successes"], result["first_failure"]) == (False, 2, 1, "down 1")
    assert len(calls) == 2 and waited == [1]
    assert result["reason"] == "down 1 (probe 2 of 3, after 1 success)"


def test_consecutive_first_probe_fails():
    probe_once, calls = outcomes(False, True)
    result = api_key_probe.consecutive(probe_once, 2, 1, sleep=lambda s: None)
    assert (result["live"], result["probes"], result["successes"], result["first_failure"]) == (False, 1, 0, "down 0")
    assert len(calls) == 1
    assert result["reason"] == "down 0 (probe 1 of 2, after 0 successes)"


@pytest.mark.parametrize("since,waits", [
    (999.5, [0.5, 1]),  # answered half an interval ago: the first probe waits the rest
    (998.0, [1]),  # longer ago than an interval: no wait before the first probe
    (1003.0, [1, 1]),  # a clock behind the earlier answer: never more than one interval
    (None, [1]),
])
def test_previous_probe_at_keeps_the_first_probe_an_interval_after_it(monkeypatch, since, waits):
    monkeypatch.setattr(api_key_probe.time, "time", lambda: 1000.0)
    probe_once, calls = outcomes(True, True)
    waited = []
    result = api_key_probe.consecutive(probe_once, 2, 1, sleep=waited.append, since=since)
    assert waited == waits and len(calls) == 2 and result["live"] is True


def test_answered_at_is_the_time_the_last_probe_answered(monkeypatch):
    clock = iter([1000.0, 1007.5])
    monkeypatch.setattr(api_key_probe.time, "time", lambda: next(clock))
    probe_once, calls = outcomes(True, True)
    result = api_key_probe.consecutive(probe_once, 2, 1, sleep=lambda s: None)
    # read once, after the last probe: not when the first one answered
    assert result["answered_at"] == 1000.0 and len(calls) == 2
    probe_once, calls = outcomes(False, True)
    assert api_key_probe.consecutive(probe_once, 2, 1, sleep=lambda s: None)["answered_at"] == 1007.5


def test_one_success_keeps_the_single_probe_reason():
    probe_once, dummy = outcomes(True)
    result = api_key_probe.consecutive(probe_once, 1, 5, sleep=lambda s: pytest.fail("no wait for one probe"))
    assert (result["live"], result["probes"], result["successes"], result["reason"]) == (True, 1, 1, "ok")
    probe_once, dummy = outcomes(False)
    result = api_key_probe.consecutive(probe_once, 1, 5, sleep=lambda s: None)
    assert (result["live"], result["probes"], result["first_failure"], result["reason"]) == (False, 1, "down 0", "down 0")


@pytest.mark.parametrize("params, error", [
    ({"successes": 0}, "successes must be between 1 and 100, got 0"),
    ({"successes": 101}, "successes must be between 1 and 100, got 101"),
    ({"interval": -1}, "interval must be between 0 and 600 seconds, got -1"),
    ({"interval": 601}, "interval must be between 0 and 600 seconds, got 601"),
])
def test_probe_limits_refuse_out_of_range(params, error):
    with pytest.raises(RotationError) as caught:
        api_key_probe.probe_limits(params)
    assert str(caught.value).startswith(error)


def test_probe_limits_defaults():
    assert api_key_probe.probe_limits({}) == (1, 1.0)
    assert api_key_probe.probe_limits({"successes": 100, "interval": 0}) == (100, 0.0)


# -- the module ---------------------------------------------------------------------------

def test_provider_three_successes_in_one_run(capsys, sleeps, provider_answers):
    api = provider_answers([OK])
    result = run(provider_args(successes=3, interval=0.5), capsys)
    assert result["live"] is True and result["changed"] is False
    assert (result["probes"], result["successes"], result["first_failure"]) == (3, 3, None)
    assert [(r.method, r.url.path) for r in api.requests] == [("GET", "/api/v1/key")] * 3
    assert sleeps == [0.5, 0.5]
    assert result["http"]["requests"] == 3
    assert KEY not in json.dumps(result)


def test_provider_failure_after_success_is_not_live(capsys, sleeps, provider_answers):
    api = provider_answers([OK, REJECTED, OK])
    result = run(provider_args(successes=3, interval=2), capsys)
    assert result["live"] is False and result.get("failed") is not True
    assert (result["probes"], result["successes"], result["status"]) == (2, 1, 401)
    assert result["first_failure"].startswith("the key was rejected: HTTP 401")
    assert result["reason"].endswith("(probe 2 of 3, after 1 success)")
    assert len(api.requests) == 2 and sleeps == [2]


def test_provider_default_probes_once(capsys, sleeps, provider_answers):
    api = provider_answers([OK])
    result = run(provider_args(), capsys)
    assert (result["live"], result["probes"], result["successes"], result["reason"]) == (True, 1, 1, "authenticated")
    assert len(api.requests) == 1 and sleeps == []


def test_out_of_range_successes_fail_before_any_request(capsys, sleeps, provider_answers):
    api = provider_answers([OK])
    result = run(provider_args(successes=0), capsys)
    assert result["failed"] is True and "successes must be between 1 and 100" in result["msg"]
    assert api.requests == [] and sleeps == []


def test_health_consecutive_successes(capsys, sleeps, health_answers):
    live = (200, {"live": True, "fingerprint": FP})
    api = health_answers([live])
    args = {"health_url": "http://127.0.0.1:9/healthz/key", "expected_fingerprint": FP, "retries": 0,
            "successes": 2, "interval": 1}
    result = run(args, capsys)
    assert (result["live"], result["mode"], result["probes"], result["successes"]) == (True, "health", 2, 2)
    assert len(api.requests) == 2 and sleeps == [1]

    api = health_answers([live, (200, {"live": True, "fingerprint": "sha256:ffffffffffff"})])
    result = run(dict(args, successes=3), capsys)
    assert (result["live"], result["probes"], result["successes"]) == (False, 2, 1)
    assert result["fingerprint"] == "sha256:ffffffffffff"
    assert "serves the key sha256:ffffffffffff" in result["first_failure"]
    assert len(api.requests) == 2


KEY_FP = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()[:12]


@pytest.fixture()
def vault_holds(monkeypatch):
    """api_key_from reads this key (and version) instead of Vault; None: the secret holds no key."""
    from ansible_collections.apikeys.rotation.plugins.module_utils import vault  # pylint: disable=import-outside-toplevel

    def install(key, version=3):
        def read(option, ref, env=None):
            if key is None:
                raise vault.VaultError("%s: secret/x does not exist. Nothing was changed." % option, "not_found")
            return key, version
        monkeypatch.setattr(vault, "read_ref_version", read)
    return install


@pytest.mark.parametrize("expected,matches", [
    (KEY_FP, True),  # the short form
    ("sha256:" + hashlib.sha256(KEY.encode()).hexdigest(), True),  # the full SHA-256 matches it too
    (KEY_FP.upper(), True),  # case does not matter
    ("sha256:ba9876543210", False),  # another key
])
def test_api_key_from_with_expected_fingerprint(capsys, sleeps, provider_answers, vault_holds, expected, matches):
    api = provider_answers([OK])
    vault_holds(KEY)
    args = {"provider": "openrouter", "base_url": BASE, "retries": 0, "api_key_from": {"path": "x"},
            "expected_fingerprint": expected}
    result = run(args, capsys)
    assert result["api_key_version"] == 3 and result["fingerprint"] == KEY_FP
    if matches:
        assert result["live"] is True and len(api.requests) == 1 and "key_mismatch" not in result
    else:
        assert result["failed"] is True and result["key_mismatch"] is True and api.requests == []
        assert "holds the key %s, not the key %s" % (KEY_FP, expected) in result["msg"]
    assert KEY not in json.dumps(result)


def test_api_key_from_refuses_a_malformed_expected_fingerprint_and_names_a_missing_key(
        capsys, sleeps, provider_answers, vault_holds):
    api = provider_answers([OK])
    vault_holds(KEY)
    args = {"provider": "openrouter", "base_url": BASE, "retries": 0, "api_key_from": {"path": "x"}}
    result = run(dict(args, expected_fingerprint="0123456789ab"), capsys)
    assert result["failed"] is True and "expected_fingerprint must be sha256:" in result["msg"]
    assert "key_mismatch" not in result
    vault_holds(None)
    result = run(dict(args, expected_fingerprint=KEY_FP), capsys)
    assert result["key_mismatch"] is True and result["fingerprint"] is None and "holds no key" in result["msg"]
    result = run(args, capsys)  # without expected_fingerprint, a missing secret stays a Vault error
    assert result["vault_error"] == "not_found" and "key_mismatch" not in result
    assert api.requests == []
