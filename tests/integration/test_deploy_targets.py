# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy targets shipped with the role, against the emulator's Cloudflare API and simulated Workers.

The story the collection started from: a live key kept as a Cloudflare Worker secret. The role
writes the new key into the secret (a new deployment), waits until the Worker's own key health
endpoint reports it live ``rotate_verify_successes`` times in a row, and only then revokes the
old key; a Worker that never picks the key up gets the previous key back.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from harness import assert_no_secret
from test_load import TimedLoad
from test_rotation import HOST, ROLLBACK, ROTATE, Setup, fp, setup_factory  # noqa: F401  pylint: disable=unused-import

SCRIPT = "signer"
PROBE_DELAY = 0.3


def worker_setup(s: Setup, tmp_path, pickup="deploy", pickup_delay=0.0, via_file=True):
    """A Worker serving the key under rotation, and the inventory and environment that deliver to it."""
    worker = s.emulator.worker(SCRIPT, s.provider, s.old["value"], pickup=pickup, pickup_delay=pickup_delay)
    if via_file:
        token_file = tmp_path / "cloudflare-token"
        token_file.write_text(worker["api_token"] + "\n")
        os.chmod(str(token_file), 0o600)
        s.env["CLOUDFLARE_API_TOKEN_FILE"] = str(token_file)
    else:
        s.env["CLOUDFLARE_API_TOKEN"] = worker["api_token"]
    s.hostvars.pop("allow_without_deploy", None)
    s.hostvars.update(deploy_target="cloudflare_worker_secret", cloudflare_account_id=worker["account_id"],
                      cloudflare_script_name=SCRIPT, cloudflare_api_base_url=s.emulator.base_url("cloudflare"),
                      health_url=worker["health_url"])
    return worker


def requests_since(emulator, start_index):
    return emulator.control("GET", "hits")["requests"][start_index:]


def test_worker_rotation_under_load_revokes_only_after_the_worker_serves_the_new_key(setup_factory, ansible,
                                                                                     emulator, tmp_path):
    s = setup_factory("anthropic")
    # the new deployment goes live a while after the write, as at Cloudflare's edge
    worker = worker_setup(s, tmp_path, pickup_delay=2.0)
    successes = 3
    inventory = s.inventory(rotate_probe_delay=PROBE_DELAY, rotate_probe_retries=200, rotate_verify_successes=successes)
    start = len(emulator.control("GET", "hits")["requests"])
    load = TimedLoad(worker["traffic_url"][:-len("/work")])
    load.start()
    try:
        time.sleep(1.0)
        began = time.monotonic()
        result = ansible.run_playbook(ROTATE, inventory=inventory, extra_vars={"rotate_force": True}, env=s.env)
        ended = time.monotonic()
        time.sleep(1.0)
    finally:
        load.stop()
    figures = load.figures(began, ended)
    sys.stdout.write("\nload through the Worker during rotation: %s\n" % figures)
    assert result.rc == 0, result

    new_value = s.value()
    state = emulator.worker_state(SCRIPT)
    assert state["secrets"] == [{"name": "ANTHROPIC_API_KEY", "type": "secret_text", "fingerprint": fp(new_value),
                                 "deployment": 2}]
    assert state["serving_fingerprint"] == fp(new_value) and state["puts"] == 2
    assert s.key(s.old["id"])["status"] != "active"
    assert figures["during_rotation"] >= 30 and figures["failed"] == 0, load.failures
    assert state["requests"]["failed"] == 0

    # Order: the secret write, then the Worker reporting the new key live `successes` times in a
    # row, and only then the old key's revoke.
    log = requests_since(emulator, start)
    put = next(i for i, r in enumerate(log) if r["provider"] == "cloudflare" and r["method"] == "PUT")
    revoke = next(i for i, r in enumerate(log) if r["provider"] == "anthropic" and r["method"] == "POST"
                  and s.old["id"] in r["path"])
    assert put < revoke
    reports = [r.get("reported") for r in log[put:revoke] if r["provider"] == "worker" and "reported" in r]
    assert fp(new_value) not in reports[:1], "the deployment goes live later than the write: verify had to wait"
    tail = 0
    for reported in reversed(reports):
        if reported != fp(new_value):
            break
        tail += 1
    assert tail >= successes, reports
    assert_no_secret(result.output + json.dumps(result.events), new_value, s.old["value"], worker["api_token"])
    assert_no_secret(open(emulator.log_path).read(), new_value, s.old["value"], worker["api_token"])


def test_worker_that_never_picks_the_key_up_gets_the_previous_key_back(setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openrouter")
    worker = worker_setup(s, tmp_path, pickup="never", via_file=False)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_retries=4), extra_vars={"rotate_force": True},
                                  env=s.env)
    assert result.rc != 0, result
    assert "did not report the key" in result.output and "Vault was restored" in result.output
    assert "delivered to cloudflare_worker_secret again" in result.output
    # The old key is untouched, Vault serves it again, and the restore wrote it to the Worker again.
    assert s.key(s.old["id"])["status"] == "active"
    assert s.value() == s.old["value"]
    state = emulator.worker_state(SCRIPT)
    assert state["puts"] == 3, "created with the old key, the new key, then the old key again"
    assert state["secrets"][0]["fingerprint"] == fp(s.old["value"])
    assert state["serving_fingerprint"] == fp(s.old["value"])
    assert_no_secret(result.output + json.dumps(result.events), s.value(2), s.old["value"], worker["api_token"])


def test_rollback_delivers_the_previous_key_to_the_worker(setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openrouter")
    worker_setup(s, tmp_path)
    inventory = s.inventory()
    assert ansible.run_playbook(ROTATE, inventory=inventory, extra_vars={"rotate_force": True}, env=s.env).rc == 0
    assert emulator.worker_state(SCRIPT)["serving_fingerprint"] == fp(s.value(2))
    result = ansible.run_playbook(ROLLBACK, inventory=inventory, env=s.env, args=["-l", HOST])
    assert result.rc == 0, result
    state = emulator.worker_state(SCRIPT)
    assert state["puts"] == 3
    assert state["secrets"][0]["fingerprint"] == fp(s.old["value"]) == state["serving_fingerprint"]
    assert s.key(s.old["id"])["status"] == "active"


@pytest.mark.parametrize("hostvars, message", [
    ({"deploy_target": "cloudflare_workers"}, "deploy_target must be one of cloudflare_worker_secret"),
    ({"cloudflare_account_id": ""}, "deploy_target cloudflare_worker_secret needs cloudflare_account_id"),
    ({"cloudflare_account_id": "not-an-account"}, "cloudflare_account_id must be a Cloudflare account id"),
    ({"cloudflare_script_name": "Signer App"}, "cloudflare_script_name must be the Worker's name"),
    ({"cloudflare_secret_name": "1KEY"}, "cloudflare_secret_name must be a secret binding name"),
    ({"health_url": ""}, "deploy_target cloudflare_worker_secret needs health_url"),
])
def test_bad_deploy_target_settings_change_nothing(hostvars, message, setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openrouter")
    worker_setup(s, tmp_path)
    before = emulator.control("GET", "state")
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(**hostvars), extra_vars={"rotate_force": True},
                                  env=s.env)
    assert result.rc != 0 and message in result.output, result
    assert "Traceback" not in result.output
    assert emulator.control("GET", "state") == before
    assert s.metadata()["current_version"] == 1


def run_module(ansible, s, args, check=False, diff=False, verbosity=0):
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "deliver", "apikeys.rotation.cloudflare_worker_secret": args, "register": "out", "ignore_errors": True}]}]
    result = ansible.run_playbook(play, env=s.env, check=check, diff=diff, verbosity=verbosity)
    return result, result.result("deliver")


def module_args(s, worker, **extra):
    args = {"account_id": worker["account_id"], "script_name": SCRIPT, "secret_name": "OPENAI_API_KEY",
            "base_url": s.emulator.base_url("cloudflare"), "api_key_from": {"path": s.kv_path}}
    args.update(extra)
    return args


def test_module_check_mode_diff_and_a_key_that_is_not_the_expected_one(setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openai")
    worker = worker_setup(s, tmp_path)
    result, task = run_module(ansible, s, module_args(s, worker, expected_fingerprint=fp(s.old["value"])),
                              check=True, diff=True)
    assert task["event"] == "ok" and task["result"]["changed"] is True, result
    assert task["result"]["bound_before"] is True and task["result"]["fingerprint"] == fp(s.old["value"])
    assert fp(s.old["value"]) in result.output and s.old["value"] not in result.output
    assert emulator.worker_state(SCRIPT)["puts"] == 1, "check mode wrote nothing"

    # at -vvvv, on both execution paths, with the token given as an option: neither the key nor the token shows
    token = worker["api_token"]
    for in_process in ("true", "false"):
        s.env["APIKEYS_IN_PROCESS"] = in_process
        result, task = run_module(ansible, s, module_args(s, worker, api_token=token), verbosity=4)
        assert task["event"] == "ok", result
        assert_no_secret(result.output + json.dumps(result.events), s.old["value"], token)
    s.env.pop("APIKEYS_IN_PROCESS")
    assert emulator.worker_state(SCRIPT)["puts"] == 3
    assert_no_secret(open(emulator.log_path).read(), s.old["value"], token)

    result, task = run_module(ansible, s, module_args(s, worker, expected_fingerprint="sha256:000000000000"))
    assert task["event"] == "failed" and "not the expected sha256:000000000000" in task["result"]["msg"], result
    assert emulator.worker_state(SCRIPT)["puts"] == 3

    # a token Cloudflare refuses: its answer in words, the token nowhere
    s.env["CLOUDFLARE_API_TOKEN"] = "x" * 40
    s.env.pop("CLOUDFLARE_API_TOKEN_FILE")
    result, task = run_module(ansible, s, module_args(s, worker))
    assert task["event"] == "failed", result
    assert "HTTP 403 code 10000 Authentication error" in task["result"]["msg"]
    assert "x" * 40 not in result.output + json.dumps(result.events)
    assert emulator.worker_state(SCRIPT)["puts"] == 3


@pytest.mark.parametrize("args, env, message", [
    ({"account_id": "abc"}, {}, "account_id must be a Cloudflare account id"),
    ({"script_name": "../x"}, {}, "script_name must be a Worker's name"),
    ({"secret_name": "A-B"}, {}, "secret_name must be a binding name"),
    ({"base_url": "http://cloudflare.example/client/v4"}, {}, "base_url must be https://"),
    ({}, {"CLOUDFLARE_API_TOKEN": ""}, "no Cloudflare API token: set api_token, CLOUDFLARE_API_TOKEN"),
    ({}, {"CLOUDFLARE_API_TOKEN": "", "CLOUDFLARE_API_TOKEN_FILE": "/nonexistent/token"},
     "cannot read the file named by CLOUDFLARE_API_TOKEN_FILE"),
    ({"expected_fingerprint": "abc"}, {}, "expected_fingerprint must be sha256:"),
])
def test_module_bad_input_names_the_option(args, env, message, setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openai")
    worker = worker_setup(s, tmp_path, via_file=False)
    s.env.update(env)
    result, task = run_module(ansible, s, module_args(s, worker, **args))
    assert task["event"] == "failed" and message in task["result"]["msg"], result
    assert "Traceback" not in result.output
    assert emulator.worker_state(SCRIPT)["puts"] == 1
