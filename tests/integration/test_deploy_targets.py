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
import stat
import subprocess
import sys
import threading
import time

import pytest

from harness import REPO_ROOT, assert_no_secret, free_port, http_json, stop_process, wait_for
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
    # The new deployment goes live later than the write, as at Cloudflare's edge: the Worker keeps
    # its old key until verify has seen it report that key after the write, then picks the new one up.
    worker = worker_setup(s, tmp_path, pickup="never")
    successes = 3
    inventory = s.inventory(rotate_probe_delay=PROBE_DELAY, rotate_probe_retries=200, rotate_verify_successes=successes)
    start = len(emulator.control("GET", "hits")["requests"])
    released = threading.Event()

    def release_after_an_old_report():
        while not released.is_set():
            log = requests_since(emulator, start)
            put = next((i for i, r in enumerate(log) if r["provider"] == "cloudflare" and r["method"] == "PUT"), None)
            if put is not None and any("reported" in r for r in log[put:] if r["provider"] == "worker"):
                emulator.control("POST", "cloudflare/worker", {"script": SCRIPT, "pickup": "deploy"})
                released.set()
            released.wait(0.05)

    releaser = threading.Thread(target=release_after_an_old_report, daemon=True)
    load = TimedLoad(worker["traffic_url"][:-len("/work")])
    releaser.start()
    load.start()
    try:
        load.wait_for_traffic(0.0)
        began = time.monotonic()
        result = ansible.run_playbook(ROTATE, inventory=inventory, extra_vars={"rotate_force": True}, env=s.env)
        ended = time.monotonic()
        load.wait_for_traffic(ended)
    finally:
        load.stop()
        released.set()
        releaser.join()
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
    assert reports[0] == fp(s.old["value"]), "the deployment goes live later than the write: verify had to wait"
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
    refused_and_nothing_changed(ansible, emulator, s, hostvars, message)


def refused_and_nothing_changed(ansible, emulator, s, hostvars, message):
    """A rotation with these settings stops with ``message``, no traceback, the emulator and Vault as they were."""
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


# ---------------------------------------------------------------------------------------------
# deploy_target: file - the key in a file on this host, and the application told to re-read it.
# The application is docs/examples/key-health/key_health.py, the small service it is: it holds
# the key its file held when it started, re-reads the file on SIGHUP only, and serves
# GET /healthz/key, so verify can only pass once the reload command made it serve the new key.

KEY_HEALTH = os.path.join(REPO_ROOT, "docs", "examples", "key-health", "key_health.py")


class FileApp:
    """key_health.py serving the key of ``key_file``, re-read on SIGHUP."""

    def __init__(self, provider, value, base_url, tmp_path, name="app"):
        self.directory = tmp_path / name
        self.directory.mkdir()
        self.key_file = self.directory / (name + ".key")
        self.key_file.write_text(value)
        os.chmod(str(self.key_file), 0o600)
        self.log_path = str(tmp_path / (name + ".log"))  # beside the key's directory, not in it
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/healthz/key" % self.port
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, KEY_HEALTH, "--provider", provider, "--key-file", str(self.key_file),
                 "--base-url", base_url, "--port", str(self.port), "--cache-seconds", "0"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: http_json("GET", self.url, timeout=1)[0] == 200, 30, "the application's key health endpoint")

    def reported(self):
        return http_json("GET", self.url)[1]

    def stop(self):
        stop_process(self.proc)
        return open(self.log_path, encoding="utf-8", errors="replace").read()


def file_setup(s: Setup, app: FileApp, **extra):
    s.hostvars.pop("allow_without_deploy", None)
    settings = dict(deploy_target="file", key_file_path=str(app.key_file),
                    key_file_reload_command=["kill", "-HUP", str(app.proc.pid)], health_url=app.url)
    settings.update(extra)
    s.hostvars.update(settings)


def test_file_target_rotation_reloads_the_application_before_the_old_key_is_revoked(setup_factory, ansible,
                                                                                    emulator, tmp_path):
    s = setup_factory("openrouter")
    app = FileApp(s.provider, s.old["value"], s.emulator.base_url(s.provider), tmp_path)
    try:
        file_setup(s, app)
        old_inode = app.key_file.stat().st_ino
        # Watch, out of band, what the application serves and whether the old key is still active.
        samples, stop = [], threading.Event()

        def watch():
            while not stop.is_set():
                samples.append((app.reported()["fingerprint"], s.key(s.old["id"])["status"]))
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_delay=PROBE_DELAY,
                                                                        rotate_verify_successes=3),
                                          extra_vars={"rotate_force": True}, env=s.env)
        finally:
            stop.set()
            watcher.join()
        assert result.rc == 0, result
        new_value = s.value()
        assert new_value != s.old["value"]
        # the file holds the new key, alone, private, and was replaced (renamed over), not rewritten
        assert app.key_file.read_text() == new_value
        assert stat.S_IMODE(app.key_file.stat().st_mode) == 0o600 and app.key_file.stat().st_ino != old_inode
        assert os.listdir(str(app.directory)) == ["app.key"]  # no temporary file left
        assert app.reported() == {"live": True, "fingerprint": fp(new_value)}
        assert s.key(s.old["id"])["status"] != "active"
        # the application served the new key before the old one was revoked, and never a revoked key
        assert samples[0] == (fp(s.old["value"]), "active"), samples[:3]
        assert (fp(new_value), "active") in samples, "the application reported the new key while the old one was active"
        assert not [x for x in samples if x[0] == fp(s.old["value"]) and x[1] != "active"], samples
        sys.stdout.write("\nfile target: %d samples of what the application served during the rotation\n" % len(samples))
        assert "Deploy | run the reload command" in result.output
        assert_no_secret(result.output + json.dumps(result.events), new_value, s.old["value"])

        # a rollback writes the previous key back and reloads the application again
        rolled = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env, args=["-l", HOST])
        assert rolled.rc == 0, rolled
        assert app.key_file.read_text() == s.old["value"]
        wait_for(lambda: app.reported() == {"live": True, "fingerprint": fp(s.old["value"])}, 30,
                 "the application serving the previous key again")
        assert_no_secret(rolled.output + json.dumps(rolled.events), new_value, s.old["value"])
    finally:
        output = app.stop()
    assert_no_secret(output, s.value(), s.old["value"])


def test_file_target_that_never_reloads_gets_the_previous_key_back(setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openrouter")
    app = FileApp(s.provider, s.old["value"], s.emulator.base_url(s.provider), tmp_path)
    try:
        # a reload command that does nothing: the application keeps serving the old key
        file_setup(s, app, key_file_reload_command="true", key_file_format="env", key_file_mode="0640")
        result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_retries=4), extra_vars={"rotate_force": True},
                                      env=s.env)
        assert result.rc != 0, result
        assert "did not report the key" in result.output and "delivered to file again" in result.output
        assert s.key(s.old["id"])["status"] == "active" and s.value() == s.old["value"]
        assert app.key_file.read_text() == "OPENROUTER_API_KEY=%s\n" % s.old["value"]
        assert stat.S_IMODE(app.key_file.stat().st_mode) == 0o640
        assert app.reported()["fingerprint"] == fp(s.old["value"])
        assert_no_secret(result.output + json.dumps(result.events), s.value(2), s.old["value"])
    finally:
        app.stop()


@pytest.mark.parametrize("hostvars, message", [
    ({"key_file_path": "relative/app.key"}, "key_file_path must be an absolute path to a file"),
    ({"key_file_mode": "0644"}, "key_file_mode 0644 lets every user of the host read or change the key"),
    ({"key_file_format": "json"}, "key_file_format must be raw (the key alone) or env"),
    ({"key_file_mode": 416}, "key_file_mode must be quoted, such as '0640'"),
    ({"key_file_reload_command": "kill -HUP 'x"}, "key_file_reload_command is not a command line"),
    ({"key_file_reload_state": "stopped"}, "key_file_reload_state must be restarted or reloaded"),
    ({"deploy_target": "kubernetes_secret", "kubernetes_namespace": "signer", "kubernetes_secret_name": "signer-key"},
     "deploy_target kubernetes_secret needs the collection kubernetes.core"),
    ({"deploy_target": "kubernetes_secret", "kubernetes_namespace": "Signer"},
     "kubernetes_namespace must be a namespace name"),
])
def test_bad_file_and_kubernetes_settings_change_nothing(hostvars, message, setup_factory, ansible, emulator, tmp_path):
    s = setup_factory("openrouter")
    key_file = tmp_path / "app.key"
    key_file.write_text(s.old["value"])
    s.hostvars.pop("allow_without_deploy", None)
    s.hostvars.update(deploy_target="file", key_file_path=str(key_file), health_url="http://127.0.0.1:9/healthz/key")
    refused_and_nothing_changed(ansible, emulator, s, hostvars, message)
    assert key_file.read_text() == s.old["value"]


def run_file_module(ansible, s, args, check=False, diff=False, verbosity=0, env=None):
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "write", "apikeys.rotation.api_key_file": args, "register": "out", "ignore_errors": True}]}]
    result = ansible.run_playbook(play, env=dict(s.env, **(env or {})), check=check, diff=diff, verbosity=verbosity)
    task = result.result("write")
    return result, dict(task["result"], failed=task["event"] == "failed")


@pytest.mark.parametrize("in_process", ["true", "false"])
def test_file_module_check_diff_idempotence_and_no_value_at_vvvv(in_process, setup_factory, ansible, tmp_path):
    s = setup_factory("openrouter")
    path = tmp_path / "app.env"
    args = {"path": str(path), "format": "env", "key_name": "OPENROUTER_API_KEY", "mode": "0640",
            "api_key_from": {"path": s.kv_path}, "expected_fingerprint": fp(s.old["value"])}
    env = {"APIKEYS_IN_PROCESS": in_process}
    result, out = run_file_module(ansible, s, args, check=True, diff=True, verbosity=4, env=env)
    assert out["changed"] is True and not path.exists(), out
    assert out["fingerprint"] == fp(s.old["value"]) and out["previous_fingerprint"] is None
    assert "absent" in out["diff"]["before"] and fp(s.old["value"]) in out["diff"]["after"]
    result2, out = run_file_module(ansible, s, args, diff=True, verbosity=4, env=env)
    assert out["changed"] is True and path.read_text() == "OPENROUTER_API_KEY=%s\n" % s.old["value"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    result3, out = run_file_module(ansible, s, args, verbosity=4, env=env)
    assert out["changed"] is False, out
    assert out["previous_fingerprint"] == fp(s.old["value"])
    # only the mode differs: changed, content kept
    os.chmod(str(path), 0o600)
    result4, out = run_file_module(ansible, s, args, env=env)
    assert out["changed"] is True and stat.S_IMODE(path.stat().st_mode) == 0o640
    # another key than the one expected: nothing written
    result5, out = run_file_module(ansible, s, dict(args, expected_fingerprint="sha256:000000000000"), env=env)
    assert out.get("failed") and "not the expected sha256:000000000000" in out["msg"], out
    assert path.read_text() == "OPENROUTER_API_KEY=%s\n" % s.old["value"]
    for run in (result, result2, result3, result4, result5):
        assert_no_secret(run.output + json.dumps(run.events), s.old["value"])


@pytest.mark.parametrize("args, message", [
    ({"mode": "0644"}, "mode 0644 lets every user of the host read or change the key"),
    ({"mode": 416}, "mode must be a quoted string such as '0600'"),
    ({"path": "relative/key"}, "path must be an absolute path"),
    ({"format": "env"}, "format is env but all of the following are missing: key_name"),
    ({"format": "kubernetes_secret", "key_name": "K", "kubernetes": {"name": "Bad_Name", "namespace": "ns"}},
     "kubernetes.name must be a Secret's name"),
    ({"owner": "no-such-user-here"}, "owner: no user 'no-such-user-here' on this host"),
    ({"api_key_from": {"path": "apps/nothing/here"}}, "does not exist"),
])
def test_file_module_bad_input_names_the_option(args, message, setup_factory, ansible, tmp_path):
    s = setup_factory("openrouter")
    path = tmp_path / "app.key"
    full = {"path": str(path), "api_key_from": {"path": s.kv_path}}
    full.update(args)
    result, out = run_file_module(ansible, s, full)
    assert out.get("failed") and message in out["msg"], out
    assert "Traceback" not in result.output and not path.exists()


# ---------------------------------------------------------------------------------------------
# deploy_target: kubernetes_secret - no cluster here. What runs: the settings checks and the
# preflight (above), and the target's tasks against the real kubernetes.core (unpacked by
# `make kubernetes-core`, without the Python library kubernetes): every kubernetes.core.k8s task
# passes that module's own argument checks, which run before it would contact a cluster, and the
# Secret's manifest is removed whatever happens. Not exercised: applying the Secret, the patch
# that rolls the workload out and the wait for the rollout.

K8S_TASKS = os.path.join(REPO_ROOT, "roles", "rotate", "tasks", "deploy_targets", "kubernetes_secret.yml")
NO_KUBERNETES_LIBRARY = "Failed to import the required Python library (kubernetes)"


def kubernetes_core_path():
    path = os.environ.get("APIKEYS_KUBERNETES_CORE_PATH", "")
    if not os.path.isfile(os.path.join(path, "ansible_collections", "kubernetes", "core", "MANIFEST.json")):
        if os.environ.get("CI"):
            pytest.fail("kubernetes.core is not unpacked: run make kubernetes-core")
        pytest.skip("kubernetes.core is not unpacked (make kubernetes-core)")
    return path


def k8s_tasks(tasks):
    for task in tasks:
        if "block" in task:
            yield from k8s_tasks(task["block"] + task.get("always", []))
        elif "kubernetes.core.k8s" in task:
            yield task


def k8s_vars(s, manifest_dir):
    return {"rotate_kubernetes_dir": {"path": manifest_dir}, "rotate_kubernetes_namespace": "signer",
            "rotate_kubernetes_secret_name": "signer-openrouter", "rotate_kubernetes_secret_key": "OPENROUTER_API_KEY",
            "rotate_kubernetes_rollout": "deployment/signer", "rotate_kubernetes_wait_timeout": "600",
            "rotate_vault_mount": "secret", "rotate_vault_path": s.kv_path,
            "rotate_deploy_fingerprint": fp(s.old["value"])}


def test_kubernetes_target_tasks_pass_kubernetes_core_argument_checks(setup_factory, ansible, tmp_path):
    import yaml

    core = kubernetes_core_path()
    s = setup_factory("openrouter")
    with open(K8S_TASKS, encoding="utf-8") as handle:
        tasks = list(k8s_tasks(yaml.safe_load(handle)))
    assert len(tasks) == 2, "apply the Secret, roll the workload out"
    manifest_dir = tmp_path / "manifest"
    manifest_dir.mkdir()
    (manifest_dir / "secret.json").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signer-openrouter", "namespace": "signer"},
        "data": {"OPENROUTER_API_KEY": "bm90LWEta2V5"}}))
    # the same arguments, without no_log, so that kubernetes.core's answer shows
    play = [{"hosts": "localhost", "gather_facts": False, "vars": k8s_vars(s, str(manifest_dir)), "tasks": [
        {"name": task["name"], "kubernetes.core.k8s": task["kubernetes.core.k8s"], "ignore_errors": True}
        for task in tasks]}]
    env = dict(s.env, ANSIBLE_COLLECTIONS_PATH=ansible.collections_path + os.pathsep + core)
    result = ansible.run_playbook(play, env=env)
    for task in tasks:
        found = result.result(task["name"])
        assert found["event"] == "failed" and NO_KUBERNETES_LIBRARY in found["result"]["msg"], found


def test_kubernetes_target_removes_the_manifest_and_shows_no_key(setup_factory, ansible, short_tmp):
    core = kubernetes_core_path()
    s = setup_factory("openrouter")
    temp = short_tmp
    variables = k8s_vars(s, "")
    del variables["rotate_kubernetes_dir"]
    play = [{"hosts": "localhost", "gather_facts": False, "vars": variables,
             "tasks": [{"name": "deliver", "ansible.builtin.include_tasks": K8S_TASKS}]}]
    env = dict(s.env, ANSIBLE_COLLECTIONS_PATH=ansible.collections_path + os.pathsep + core, TMPDIR=str(temp))
    result = ansible.run_playbook(play, env=env, verbosity=3)
    assert result.rc != 0
    assert result.result("Deploy | write the Secret's manifest")["event"] == "ok"
    applied = result.result("Deploy | apply the Secret")
    assert applied["event"] == "failed" and "no_log" in json.dumps(applied["result"]), applied
    assert result.result("Deploy | remove the Secret's manifest")["event"] == "ok"
    made = result.result("Deploy | make a private directory for the Secret's manifest")["result"]["path"]
    assert made.startswith(str(temp)) and not os.path.exists(made)
    assert os.listdir(str(temp)) == []
    assert_no_secret(result.output + json.dumps(result.events), s.old["value"])
