# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotate role and the rotate / probe / rollback / cleanup playbooks, end to end.

Real ansible-playbook against a real OpenBao and the provider emulator. Every outcome is
checked out of band: Vault with plain hvac, the provider side through the emulator's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hvac
import pytest

from harness import assert_no_secret
from harness import BIN_DIR, http_json, key_authenticates, kill_hung

PROVIDERS = ("anthropic", "openai", "openrouter")
ROTATE = "apikeys.rotation.rotate"
PROBE = "apikeys.rotation.probe"
ROLLBACK = "apikeys.rotation.rollback"
CLEANUP = "apikeys.rotation.cleanup"
HOST = "test-key"
ADMIN_ENV = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY", "openrouter": "OPENROUTER_MANAGEMENT_KEY"}
BASE_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL", "openrouter": "OPENROUTER_BASE_URL"}
# Fast settings: probes 0.2 s apart, two consecutive successes.
FAST = {"rotate_probe_delay": 0.2, "rotate_probe_retries": 8, "rotate_verify_successes": 2,
        "rotate_check_retries": 2, "rotate_check_delay": 0.2}


def fp(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class Setup:
    """One key under rotation: Vault secret, provider keys, inventory and environment."""

    def __init__(self, provider: str, openbao, emulator, kv_path: str, mount: str = "secret",
                 vault_env: t.Optional[t.Dict[str, str]] = None) -> None:
        """``vault_env`` replaces the root-token connection the collection gets (a TLS server with AppRole)."""
        self.provider = provider
        self.emulator = emulator
        self.kv_path = kv_path
        self.mount = mount
        # out of band: plain hvac with the root token (and the server's CA, when it has one)
        self.vault = hvac.Client(url=openbao.addr, token=openbao.root_token,
                                 verify=getattr(openbao, "cafile", None) or True)
        self.admin = emulator.control("POST", "keys", {"provider": provider, "kind": "admin"})["value"]
        self.env = dict(vault_env or {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token})
        self.env.update({ADMIN_ENV[provider]: self.admin, BASE_ENV[provider]: emulator.base_url(provider)})
        # the tests read Vault themselves: no application holds the key
        self.hostvars: t.Dict[str, t.Any] = {"provider": provider, "vault_path": kv_path, "allow_without_deploy": True}
        if mount != "secret":
            self.hostvars["vault_mount"] = mount
        self.hostvars.update(FAST)
        body: t.Dict[str, t.Any] = {"provider": provider, "kind": "api", "name": "initial"}
        if provider == "openai":
            self.project = emulator.control("POST", "openai/projects", {"name": "rotation-tests"})["id"]
            body["project_id"] = self.project
        self.old = emulator.control("POST", "keys", body)
        if provider == "openai":
            # each key on a service account of its own (the default): revoking a key deletes its account
            self.hostvars.update(openai_project_id=self.project)
        self.write_secret(self.old["value"])
        self.console: t.Optional[dict] = None
        if provider == "anthropic":
            self.stage_console_key()

    def stage_console_key(self) -> dict:
        """Anthropic cannot create keys by API: a person makes one in the Console and stages it in Vault."""
        self.console = self.emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "console-made"})
        self.vault.secrets.kv.v2.create_or_update_secret(path=self.kv_path + "-next", secret={"api_key": self.console["value"]},
                                                         mount_point=self.mount)
        self.hostvars["new_api_key_vault_path"] = self.kv_path + "-next"
        return self.console

    def restage_console_key(self) -> dict:
        """Stage a fresh Console-made key; the one staged before, never used, is made inactive at the provider."""
        unused = self.console
        staged = self.stage_console_key()
        if unused:
            status = http_json("POST", "%s/v1/organizations/api_keys/%s" % (self.emulator.base_url("anthropic"), unused["id"]),
                               {"status": "inactive"}, headers={"x-api-key": self.admin, "anthropic-version": "2023-06-01"})[0]
            assert status == 200, status
        return staged

    def write_secret(self, value: str) -> None:
        self.vault.secrets.kv.v2.create_or_update_secret(path=self.kv_path, secret={"api_key": value}, mount_point=self.mount)

    def inventory(self, **extra: t.Any) -> dict:
        hostvars = dict(self.hostvars, **extra)
        return {"api_keys": {"hosts": {HOST: hostvars}}}

    # -- out-of-band reads -------------------------------------------------------

    def metadata(self) -> dict:
        return self.vault.secrets.kv.v2.read_secret_metadata(path=self.kv_path, mount_point=self.mount)["data"]

    def record(self) -> dict:
        return self.metadata().get("custom_metadata") or {}

    def value(self, version: t.Optional[int] = None) -> str:
        read = self.vault.secrets.kv.v2.read_secret_version(path=self.kv_path, version=version, mount_point=self.mount,
                                                            raise_on_deleted_version=True)
        return read["data"]["data"]["api_key"]

    def keys(self) -> t.List[dict]:
        """This provider's API keys (not admin keys) as the emulator holds them."""
        return [k for k in self.emulator.control("GET", "state")[self.provider]["keys"] if k.get("kind") == "api"]

    def key(self, key_id: str) -> dict:
        found = [k for k in self.keys() if k["id"] == key_id]
        assert len(found) == 1, "key %s not in the emulator state" % key_id
        return found[0]

    def active(self) -> t.List[dict]:
        return [k for k in self.keys() if k["status"] == "active"]

    def authenticates(self, value: str) -> bool:
        """Ask the provider's zero-token endpoint directly (not through the module under test)."""
        return key_authenticates(self.emulator, self.provider, value)

    def assert_rotated(self) -> str:
        """Exactly one active key beside any OpenAI grace-period key; Vault's newest value is that key."""
        newest = self.value()
        assert newest != self.old["value"]
        active = self.active()
        new = [k for k in active if k["fingerprint"] == fp(newest)]
        assert len(new) == 1, "Vault's newest key is not exactly one active provider key: %s" % active
        others = [k for k in active if k["id"] != new[0]["id"]]
        if self.provider == "openai":
            assert [k["id"] for k in others] == [self.old["id"]], "OpenAI keeps only the old key active until cleanup"
        else:
            assert others == [], "more than one active key: %s" % active
        assert self.authenticates(newest)
        return newest


def recap_changed(result) -> int:
    found = re.findall(r"^%s\s*:.*?changed=(\d+)" % re.escape(HOST), result.stdout, re.M)
    assert found, result
    return int(found[-1])


def task_result(result, suffix: str) -> dict:
    found = [e for e in result.events if e["task"].endswith(suffix) and e["event"] in ("ok", "failed")]
    assert len(found) == 1, "expected one result of %r, got %d\n%r" % (suffix, len(found), result)
    return found[0]["result"]


@pytest.fixture()
def setup_factory(openbao, emulator, kv_path):
    def make(provider: str) -> Setup:
        return Setup(provider, openbao, emulator, kv_path)
    return make


# -- the happy path, per provider ---------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rotation_per_provider(provider, setup_factory, ansible):
    s = setup_factory(provider)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert result.rc == 0, result
    new_value = s.assert_rotated()

    # Vault history keeps the old key as version 1; the record describes the rotation.
    assert s.metadata()["current_version"] == 2
    assert s.value(1) == s.old["value"]
    record = s.record()
    assert "stage" not in record
    assert record["fingerprint"] == fp(new_value)
    assert record["previous_key_id"] == s.old["id"]
    assert record["previous_fingerprint"] == fp(s.old["value"])
    assert record["previous_version"] == "1"
    assert record["rotated_at"]
    old = s.key(s.old["id"])
    if provider == "openai":
        assert record["previous_state"] == "active" and old["status"] == "active"
    else:
        assert record["previous_state"] == "disabled"
        assert old["status"] == {"anthropic": "inactive", "openrouter": "disabled"}[provider]
        assert not s.authenticates(s.old["value"])
    if provider == "anthropic":
        assert fp(new_value) == fp(s.console["value"]), "the staged Console key is the one rotated to"
        # its staging path no longer serves a second copy of the live key
        staged = s.vault.secrets.kv.v2.read_secret_version(path=s.kv_path + "-next", mount_point=s.mount,
                                                           raise_on_deleted_version=True)["data"]
        assert "api_key" not in staged["data"] and staged["data"]["used_key_fingerprint"] == fp(new_value)
    assert_no_secret(result.output, s.old["value"], new_value, s.admin)
    closing = task_result(result, "Report | every key")["msg"]
    assert closing[1].startswith(HOST) and " rotated " in closing[1] and fp(new_value) in closing[1], closing
    assert closing[-1] == "rotate: 1 key(s), none failed"
    summary = task_result(result, "Report | summary")["msg"]
    assert summary["current"]["fingerprint"] == fp(new_value) and summary["previous"]["key_id"] == s.old["id"]

    # A scheduled run inside max_age changes nothing.
    again = ansible.run_playbook(ROTATE, inventory=s.inventory(), env=s.env)
    assert again.rc == 0, again
    assert recap_changed(again) == 0
    assert s.metadata()["current_version"] == 2

    # The probe playbook finds the key live; it changes nothing.
    probed = ansible.run_playbook(PROBE, inventory=s.inventory(), env=s.env)
    assert probed.rc == 0, probed
    assert recap_changed(probed) == 0

    if provider == "openai":
        # OpenAI cannot disable: cleanup deletes the old key once the grace period has passed.
        inside_grace = ansible.run_playbook(CLEANUP, inventory=s.inventory(), env=s.env)
        assert inside_grace.rc == 0 and recap_changed(inside_grace) == 0, inside_grace
        assert s.key(s.old["id"])["status"] == "active"
        cleaned = ansible.run_playbook(CLEANUP, inventory=s.inventory(grace_period="0s"), env=s.env)
        assert cleaned.rc == 0, cleaned
        assert s.key(s.old["id"])["status"] == "deleted"
        assert s.record()["previous_state"] == "deleted"
        assert [k["fingerprint"] for k in s.active()] == [fp(new_value)]
        repeat = ansible.run_playbook(CLEANUP, inventory=s.inventory(grace_period="0s"), env=s.env)
        assert repeat.rc == 0 and recap_changed(repeat) == 0, repeat


def test_anthropic_key_waits_for_a_new_console_key(setup_factory, ansible):
    """A due Anthropic key with no new Console key: reported as waiting and green until console_key_wait past
    max_age, then red; forced, it fails at once. Nothing is written either way."""
    s = setup_factory("anthropic")
    s.vault.secrets.kv.v2.delete_metadata_and_all_versions(path=s.kv_path + "-next", mount_point=s.mount)
    # rotated 2 days ago, max_age 1d: due since a day
    s.vault.secrets.kv.v2.update_metadata(path=s.kv_path, mount_point=s.mount, custom_metadata={
        "provider": "anthropic", "key_id": s.old["id"], "fingerprint": fp(s.old["value"]),
        "rotated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))})
    before = (s.metadata(), [(k["id"], k["name"], k["status"]) for k in s.keys()])
    waiting = ansible.run_playbook(ROTATE, inventory=s.inventory(max_age="1d", console_key_wait="7d"), env=s.env)
    assert waiting.rc == 0, waiting
    entry = task_result(waiting, "Report | hand the result to AWX workflows")["ansible_stats"]["data"]["apikeys_rotation"][HOST]
    assert entry["result"] == "waiting" and entry["changed"] is False
    assert entry["waiting"].startswith("waiting for a new Console key at secret/%s-next: due since " % s.kv_path), entry
    assert "the rotate run fails from " in entry["waiting"] and "(console_key_wait 7d)" in entry["waiting"]
    closing = task_result(waiting, "Report | every key")["msg"]
    assert "nothing (waiting for a new Console key)" in closing[1], closing
    assert (s.metadata(), [(k["id"], k["name"], k["status"]) for k in s.keys()]) == before
    # past the limit, and forced: the host fails, naming what to do; still nothing written
    for extra in ({"max_age": "1d", "console_key_wait": "12h"}, {"max_age": "30d", "rotate_force": True}):
        late = ansible.run_playbook(ROTATE, inventory=s.inventory(**extra), env=s.env)
        assert late.rc == 2, late
        message = task_result(late, "Plan | require a new console-made key where the provider cannot create one")["msg"]
        assert "write it as the field api_key at new_api_key_vault_path" in message and "Nothing was changed." in message
        assert ("plus console_key_wait 12h" in message) == ("console_key_wait" in extra), message
        assert (s.metadata(), [(k["id"], k["name"], k["status"]) for k in s.keys()]) == before


@pytest.mark.parametrize("reading", ["refuse", "allow"])
def test_openai_rotation_on_a_configured_service_account(reading, setup_factory, ansible, emulator):
    """Keys on openai_service_account_id: the new key joins the old one's account. Under OpenAI's published
    reading the old key cannot be deleted alone, so cleanup keeps it active and says so, never deleting the
    account (which holds the live key); under the newer reading cleanup deletes it."""
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": reading})
    s = setup_factory("openai")
    s.hostvars["openai_service_account_id"] = s.old["service_account_id"]
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert result.rc == 0, result
    new_value = s.assert_rotated()
    new_id = s.record()["key_id"]
    assert s.key(new_id)["service_account_id"] == s.old["service_account_id"]
    cleaned = ansible.run_playbook(CLEANUP, inventory=s.inventory(grace_period="0s"), env=s.env)
    assert cleaned.rc == 0, cleaned
    accounts = emulator.control("GET", "state")["openai"]["service_accounts"]
    assert {a["id"]: a["status"] for a in accounts}[s.old["service_account_id"]] == "active"
    assert s.authenticates(new_value)
    summary = task_result(cleaned, "Cleanup | summary")["msg"]
    if reading == "refuse":
        assert s.key(s.old["id"])["status"] == "active"
        assert s.record()["previous_state"] == "active"
        assert summary["kept_active"] == [s.old["id"]] and summary["deleted"] == []
        assert "%s STAYS ACTIVE" % s.old["id"] in cleaned.output and "OpenAI dashboard" in cleaned.output
    else:
        assert s.key(s.old["id"])["status"] == "deleted"
        assert s.record()["previous_state"] == "deleted"
        assert summary["deleted"] == [s.old["id"]] and summary["kept_active"] == []
    assert_no_secret(result.output + cleaned.output, s.old["value"], new_value, s.admin)


def test_a_previous_key_the_provider_refuses_to_delete_stays_active_in_the_record(setup_factory, ansible, emulator):
    """retire_state=deleted where OpenAI refuses to delete the old key alone (its service account's key, under the
    published reading): the rotation finishes, warns, and its record says the previous key stays active, so that
    cleanup and a rollback know it is."""
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": "refuse"})
    s = setup_factory("openai")
    s.hostvars["openai_service_account_id"] = s.old["service_account_id"]
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_retire_state="deleted"),
                                  extra_vars={"rotate_force": True}, env=s.env)
    assert result.rc == 0, result
    new_value = s.assert_rotated()
    assert s.key(s.old["id"])["status"] == "active"
    record = s.record()
    assert (record["previous_key_id"], record["previous_state"]) == (s.old["id"], "active"), record
    retired = task_result(result, "Retire | revoke the previous key")
    assert retired["kept_active"] is True and retired["changed"] is False, retired
    assert "[WARNING]" in result.output
    assert "%s until cleanup deletes it" % s.old["id"] in result.output, result.output[-3000:]
    assert_no_secret(result.output, s.old["value"], new_value, s.admin)


def test_cleanup_check_mode_says_would_delete_and_deletes_nothing(setup_factory, ansible):
    s = setup_factory("openrouter")
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert result.rc == 0, result
    record, keys = s.record(), s.keys()
    checked = ansible.run_playbook(CLEANUP, inventory=s.inventory(grace_period="0s"), env=s.env, check=True, diff=True)
    assert checked.rc == 0, checked
    summary = task_result(checked, "Cleanup | summary")["msg"]
    assert summary["would_delete"] == [s.old["id"]] and "deleted" not in summary, summary
    assert summary["result"] == "would delete"
    assert s.keys() == keys and s.record() == record
    assert s.key(s.old["id"])["status"] == "disabled"
    cleaned = ansible.run_playbook(CLEANUP, inventory=s.inventory(grace_period="0s"), env=s.env)
    assert cleaned.rc == 0, cleaned
    summary = task_result(cleaned, "Cleanup | summary")["msg"]
    assert summary["deleted"] == [s.old["id"]] and summary["result"] == "deleted"
    assert s.key(s.old["id"])["status"] == "deleted" and s.record()["previous_state"] == "deleted"


DUMP_HOOK = """
- name: Hostile hook | every variable of this key
  ansible.builtin.debug:
    var: hostvars[inventory_hostname]
- name: Hostile hook | the role's registered results by name
  ansible.builtin.debug:
    msg: "{{ [rotate_created | default(''), rotate_staged | default(''), rotate_active | default(''),
             rotate_adopt_secret | default(''), rotate_named_secret | default(''),
             rotate_previous_secret | default('')] | to_json }}"
"""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_deploy_hook_can_read_no_key_value(provider, setup_factory, ansible, tmp_path):
    """A deploy hook that dumps every variable it can reach (rotation and rollback) finds no key value."""
    hook = tmp_path / "dump.yml"
    hook.write_text(DUMP_HOOK)
    s = setup_factory(provider)
    rotated = ansible.run_playbook(ROTATE, inventory=s.inventory(deploy_tasks=str(hook)),
                                   extra_vars={"rotate_force": True}, env=s.env)
    assert rotated.rc == 0, rotated
    new_value = s.assert_rotated()
    assert "Hostile hook | every variable of this key" in rotated.output
    assert "rotate_new_fingerprint" in rotated.output and "rotate_created" in rotated.output, "the hook saw the role's variables"
    secrets = [s.old["value"], new_value, s.admin] + ([s.console["value"]] if s.console else [])
    assert_no_secret(rotated.output, *secrets)
    # No task of the role hides a key behind no_log: the modules move values between Vault and the
    # provider themselves, so every result it registers is recorded whole here, and none holds a key.
    censored = sorted({e["task"].split(" : ")[-1] for e in rotated.results() if e["result"].get("censored")})
    assert censored == [], censored
    assert_no_secret(json.dumps(rotated.events), *secrets)
    if provider != "openai":
        rolled = ansible.run_playbook(ROLLBACK, inventory=s.inventory(deploy_tasks=str(hook)), env=s.env,
                                      args=["-l", HOST])
        assert rolled.rc == 0, rolled
        assert s.value() == s.old["value"]
        assert "Hostile hook | every variable of this key" in rolled.output
        assert_no_secret(rolled.output, *secrets)


@pytest.mark.parametrize("status", [401, 403])
def test_a_restricted_new_key_is_proven_live_not_restored(status, setup_factory, ansible, emulator):
    """New OpenAI keys that may not list models (401 or 403 'Missing scopes'): the rotation completes."""
    emulator.control("POST", "behaviour", {"openai_new_key_scopes": "no-model-list", "openai_restricted_status": status})
    s = setup_factory("openai")
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert result.rc == 0, result
    new_value = s.value()
    record = s.record()
    # proven, not restored: Vault serves the new key, recorded as done, and no failure noted
    assert new_value != s.old["value"] and s.metadata()["current_version"] == 2
    assert "stage" not in record and record["fingerprint"] == fp(new_value) and "last_failure" not in record
    assert s.key(record["key_id"])["scopes"] == ["model.request"] and s.key(record["key_id"])["status"] == "active"
    probed = ansible.run_playbook(PROBE, inventory=s.inventory(), env=s.env)
    assert probed.rc == 0, probed
    summary = task_result(probed, "Probe | summary")["msg"]
    assert summary["live"] is True and summary["restricted"] in (True, "True")
    assert_no_secret(result.output + probed.output, s.old["value"], new_value, s.admin)


def test_check_mode_changes_nothing(setup_factory, ansible):
    s = setup_factory("openrouter")
    before = s.keys()
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env,
                                  check=True, diff=True)
    assert result.rc == 0, result
    assert recap_changed(result) == 2, "check mode reports the rotation it would make, and the record it would leave"
    assert "would rotate" in result.stdout
    # --diff: the record the rotation would leave, from the Vault module's own check-mode diff
    planned = task_result(result, "Plan | the rotation record this run would leave")
    after = planned["diff"]["after"]["custom_metadata"]
    assert after["previous_key_id"] == s.old["id"] and after["previous_fingerprint"] == fp(s.old["value"])
    assert after["key_id"] == "(the new key, made at the provider)" and after["previous_state"] == "disabled"
    assert after["previous_version"] == "1" and "stage" not in after
    assert planned["diff"]["before"]["custom_metadata"] == {}
    assert re.search(r'^\+ +"previous_key_id": "%s",$' % s.old["id"], result.stdout, re.M), "the diff is shown"
    # the key in use and the key the plan would retire are the same id (found by its hint)
    summary = task_result(result, "Report | summary")["msg"]
    assert summary["current"]["key_id"] == s.old["id"] and summary["plan"]["retire"].startswith(s.old["id"] + " -> ")
    assert s.keys() == before
    assert s.metadata()["current_version"] == 1 and s.record() == {}


def vault_paths_state(s: Setup) -> dict:
    """Every secret next to the key (the key, its .next and .lock), as Vault has them: versions and metadata."""
    state = {}
    for path in (s.kv_path, s.kv_path + ".next", s.kv_path + ".lock"):
        try:
            meta = s.vault.secrets.kv.v2.read_secret_metadata(path=path, mount_point=s.mount)["data"]
        except hvac.exceptions.InvalidPath:
            state[path] = None
            continue
        state[path] = {"current_version": meta["current_version"], "custom_metadata": meta["custom_metadata"]}
    return state


PREFLIGHT_CASES = {
    "admin key unset": ({"env_drop": "OPENROUTER_MANAGEMENT_KEY"}, ["admin_key is required", "OPENROUTER_MANAGEMENT_KEY"]),
    "base_url without /v1": ({"base_url": "/openrouter/api"},
                             ["HTTP 404", "does not lead to OpenRouter's API", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1"]),
    "admin key refused": ({"env_set": "sk-or-v1-" + "0" * 64}, ["HTTP 401"]),
    "no deploy hook, no health_url": ({"hostvars": {"allow_without_deploy": False}},
                                      ["neither deploy_target, deploy_tasks nor health_url", "allow_without_deploy: true"]),
    "deploy hook missing": ({"hostvars": {"deploy_tasks": "/nonexistent/deploy.yml"}},
                            ["deploy_tasks names /nonexistent/deploy.yml, which is not a file"]),
}


@pytest.mark.parametrize("case", list(PREFLIGHT_CASES))
@pytest.mark.parametrize("mode", ["run", "check", "known-key"])
def test_preflight_stops_before_anything_is_written(case, mode, setup_factory, ansible):
    """A run that could not finish stops before the lease, the record or a new key: Vault and the provider are untouched.

    A key without a record is first listed to be adopted (that listing is the admin check); with
    current_key_id, the preflight looks that key up instead (a wrong base_url is named as such there too).
    """
    change, expected = PREFLIGHT_CASES[case]
    check = mode == "check"
    s = setup_factory("openrouter")
    if mode == "known-key":
        s.hostvars["current_key_id"] = s.old["id"]
    env = dict(s.env)
    if "env_drop" in change:
        env.pop(change["env_drop"])
    if "env_set" in change:
        env["OPENROUTER_MANAGEMENT_KEY"] = change["env_set"]
    if "base_url" in change:
        env["OPENROUTER_BASE_URL"] = s.emulator.base_url("openrouter").split("/openrouter/")[0] + change["base_url"]
    keys_before, vault_before = s.keys(), vault_paths_state(s)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(**change.get("hostvars", {})), env=env,
                                  extra_vars={"rotate_force": True}, check=check)
    assert result.rc != 0, result
    failed = [e for e in result.results(host=HOST) if e["event"] == "failed"]
    # a setting the rotation could not finish with: the plan's own check, before any provider call;
    # the admin key and base_url: the preflight's own call, or the plan's listing that adopts a key
    # without a record (the same check)
    if "hostvars" in change:
        first = r": Plan \| require an existing key, a known stage and a rotation that can finish$"
    elif mode == "known-key":
        first = r": Preflight \| check that the admin key is accepted and base_url answers as the provider$"
    else:
        first = r": (Preflight \||Plan \| list the provider's keys)"
    assert len(failed) == 1 and re.search(first, failed[0]["task"]), result
    message = failed[0]["result"]["msg"]
    for text in expected:
        assert text in message, message
    assert "Traceback" not in result.output and "Unknown error" not in result.output
    assert s.keys() == keys_before and vault_paths_state(s) == vault_before
    assert_no_secret(result.output, s.old["value"], s.admin)


def test_current_key_id_of_another_key_stops_before_anything_is_written(setup_factory, ansible):
    """current_key_id naming a key the provider has, but not the key in Vault: one failure naming the setting."""
    s = setup_factory("openrouter")
    other = s.emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "another"})
    keys_before, vault_before = s.keys(), vault_paths_state(s)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(current_key_id=other["id"]), env=s.env,
                                  extra_vars={"rotate_force": True})
    assert result.rc != 0, result
    failed = [e for e in result.results(host=HOST) if e["event"] == "failed"]
    assert [e["task"] for e in failed] == [
        "apikeys.rotation.rotate : Preflight | stop on a current_key_id that is not the key in Vault"], result
    message = failed[0]["result"]["msg"]
    assert message.startswith("%s: current_key_id (rotate_current_key_id) is %s, but its redacted hint "
                              % (HOST, other["id"])), message
    assert "does not fit the key in Vault (%s). Set current_key_id" % fp(s.old["value"]) in message, message
    assert message.endswith("Nothing was changed."), message
    assert s.keys() == keys_before and vault_paths_state(s) == vault_before
    assert_no_secret(result.output, s.old["value"], other["value"], s.admin)


def test_probe_fails_for_a_key_that_is_not_live(setup_factory, ansible):
    s = setup_factory("openrouter")
    # Someone disables the key in use at the provider (out of band, through the management API).
    status = http_json("PATCH", s.emulator.base_url("openrouter") + "/keys/" + s.old["id"], {"disabled": True},
                       headers={"Authorization": "Bearer " + s.admin})[0]
    assert status == 200
    result = ansible.run_playbook(PROBE, inventory=s.inventory(), env=s.env)
    assert result.rc != 0, result
    assert "NOT LIVE" in result.output and fp(s.old["value"]) in result.output
    message = task_result(result, "Probe | report a key that is not live")["msg"]
    assert re.fullmatch(re.escape("%s: NOT LIVE. The key in Vault (%s, version 1) is not live at openrouter: "
                                  % (HOST, fp(s.old["value"]))) + r"[^ ].*[^ .]\.", message), message
    assert recap_changed(result) == 0
    assert s.metadata()["current_version"] == 1 and s.key(s.old["id"])["status"] == "disabled"
    assert_no_secret(result.output, s.old["value"], s.admin)


# -- failing verification -----------------------------------------------------------


def test_new_key_never_valid_stops_before_revoke(setup_factory, ansible):
    s = setup_factory("openrouter")
    s.emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_delay": 0, "revoke_delay": 0,
                                               "never_valid": True})
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_retries=3), extra_vars={"rotate_force": True},
                                  env=s.env)
    assert result.rc != 0, result
    assert "did not authenticate" in result.output and "was not touched" in result.output
    # The old key is still active and still what Vault serves; the unusable key is gone.
    assert s.key(s.old["id"])["status"] == "active"
    assert s.metadata()["current_version"] == 1 and s.value() == s.old["value"]
    assert s.authenticates(s.value())
    assert [k["id"] for k in s.active()] == [s.old["id"]]
    assert "stage" not in s.record()


def test_key_rejected_after_it_went_live_fails_verify_and_restores(setup_factory, ansible):
    """Live at the first verify probe, rejected in the confirming ones: verify fails, nothing is revoked."""
    s = setup_factory("openrouter")
    probes = "openrouter GET /key"

    # GET /key is only the probe: 1 pre-verify, 1 verify until live, then the confirming ones 2 s apart.
    # Once the first confirming probe arrived, the provider rejects the key (out of band).
    def reject_after_the_first_confirming_probe():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            answered = [r["status"] for r in s.emulator.control("GET", "hits")["requests"]
                        if "%s %s %s" % (r["provider"], r["method"], r["route"]) == probes]
            if len(answered) >= 3 and answered[2] is not None:  # answered, not only received
                s.emulator.control("POST", "faults", {"provider": "openrouter", "method": "GET", "path": "^/key$",
                                                      "status": 401, "count": 20})
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=reject_after_the_first_confirming_probe, daemon=True)
    watcher.start()
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_verify_successes=3, rotate_probe_delay=2),
                                  extra_vars={"rotate_force": True}, env=s.env)
    watcher.join(timeout=5)
    assert result.rc != 0, result
    assert "went live, then failed confirming probe 2 of 2 after 1 consecutive success(es)" in result.output, result
    assert "the key was rejected: HTTP 401" in result.output and "Vault was restored" in result.output
    # The confirming probes ran in one module run and stopped at the failure: 2 + 2 probes in all.
    assert s.emulator.control("GET", "hits")["counts"][probes] == 4
    assert s.key(s.old["id"])["status"] == "active"
    meta = s.metadata()
    assert meta["current_version"] == 3 and s.value() == s.old["value"]
    assert "went live, then failed confirming probe" in meta["custom_metadata"]["last_failure"]
    assert_no_secret(result.output, s.old["value"], s.value(2), s.admin)


class HealthServer:
    """An application health endpoint that keeps reporting one fixed key (its deploy hook never ran)."""

    def __init__(self, fingerprint: str) -> None:
        body = json.dumps({"live": True, "fingerprint": fingerprint}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/healthz/key" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_application_never_reports_new_key_restores_previous(setup_factory, ansible):
    s = setup_factory("openrouter")
    health = HealthServer(fp(s.old["value"]))
    # credentials in the URL (sent as basic auth) are never shown in a message or the record
    password = "pw-%s" % os.urandom(6).hex()
    with_userinfo = health.url.replace("http://", "http://probe:%s@" % password)
    try:
        # at -vvvv, so that every module invocation (the URL as the task gave it) is shown too
        result = ansible.run_playbook(ROTATE, inventory=s.inventory(health_url=with_userinfo, rotate_probe_retries=3),
                                      extra_vars={"rotate_force": True}, env=s.env, verbosity=4)
    finally:
        health.close()
    assert result.rc != 0, result
    assert "did not report the key" in result.output and "Vault was restored" in result.output
    assert health.url in result.output and password not in result.output
    assert password not in json.dumps(result.events)
    assert password not in json.dumps(s.metadata())
    # Nothing was revoked; Vault serves the proven old key again as its newest version.
    assert s.key(s.old["id"])["status"] == "active"
    meta = s.metadata()
    assert meta["current_version"] == 3
    assert s.value() == s.old["value"] and s.value(3) == s.old["value"]
    unproven = s.value(2)
    record = meta["custom_metadata"]
    assert "stage" not in record
    assert record["key_id"] == s.old["id"] and record["fingerprint"] == fp(s.old["value"])
    assert record["previous_fingerprint"] == fp(unproven) and record["previous_state"] == "active"
    assert "did not report" in record["last_failure"]
    assert_no_secret(result.output, s.old["value"], unproven, s.admin)

    # The next rotation deletes the unproven key once its own new key is proven.
    again = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert again.rc == 0, again
    assert s.key(record["previous_key_id"])["status"] == "deleted"
    assert s.key(s.old["id"])["status"] == "disabled"
    assert [k["fingerprint"] for k in s.active()] == [fp(s.value())]


def test_propagation_delay_longer_than_a_probe_interval(setup_factory, ansible):
    s = setup_factory("openai")
    # counted in refused authentications: the first probes fail however slow the machine
    s.emulator.control("POST", "propagation", {"provider": "openai", "new_key_refusals": 4, "revoke_delay": 0})
    started = time.monotonic()
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_retries=60, rotate_probe_delay=0.3,
                                                                rotate_verify_successes=2),
                                  extra_vars={"rotate_force": True}, env=s.env)
    elapsed = time.monotonic() - started
    assert result.rc == 0, result
    s.assert_rotated()
    preverify = task_result(result, "Pre-verify | probe the new key at the provider until it authenticates")
    assert preverify["attempts"] > 1, "the first probes met the propagation delay"
    # The report's times come from the probes' answers: at least the waits between the attempts
    # (0.3 s each; the report rounds to 0.1 s) and less than the whole run.
    probes = task_result(result, "Report | summary")["msg"]["probes"]
    assert 0.3 * (preverify["attempts"] - 1) - 0.05 <= probes["pre_verify_seconds"] < elapsed, (probes, elapsed)
    # verify: the first live probe, then one more 0.3 s later
    assert 0.3 - 0.05 <= probes["seconds_from_store_to_verified"] < elapsed, (probes, elapsed)
    assert probes["pre_verify_seconds"] + probes["seconds_from_store_to_verified"] < elapsed, (probes, elapsed)


# -- resuming after a kill ----------------------------------------------------------


def start_playbook(ansible, playbook: str, inventory: dict, extra_vars: dict, env: dict) -> subprocess.Popen:
    run_dir = tempfile.mkdtemp(prefix="killed-", dir=ansible.workdir)
    inventory_path = os.path.join(run_dir, "inventory.json")
    with open(inventory_path, "w", encoding="utf-8") as handle:
        json.dump(inventory, handle)
    vars_path = os.path.join(run_dir, "extra_vars.json")
    with open(vars_path, "w", encoding="utf-8") as handle:
        json.dump(extra_vars, handle)
    run_env = ansible.env(dict(env, PYTHONUNBUFFERED="1"))
    return subprocess.Popen([os.path.join(BIN_DIR, "ansible-playbook"), playbook, "-i", inventory_path, "-e", "@" + vars_path],
                            cwd=run_dir, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill_at_task(proc: subprocess.Popen, task_name: str, timeout: float = 120) -> str:
    """SIGKILL the whole ansible-playbook process group as soon as ``task_name`` starts."""
    seen: t.List[str] = []
    timer = threading.Timer(timeout, kill_hung, args=(proc.pid, timeout))
    timer.start()
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("TASK [") and task_name in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        else:
            raise AssertionError("the playbook ended before task %r:\n%s" % (task_name, "".join(seen[-80:])))
    finally:
        timer.cancel()
        proc.wait(timeout=30)
    return "".join(seen)


RESUME_POINTS = {
    # killed as this task starts -> the stage the record must then show
    "after-create": ("Pre-verify | probe the new key at the provider until it authenticates", "creating"),
    "after-store": ("Verify | probe the active key at the provider until it is live", "stored"),
    "inside-store": ("Verify | probe the active key at the provider until it is live", "stored"),
    "after-verify": ("Retire | revoke the previous key", "verified"),
}


@pytest.mark.parametrize("point", sorted(RESUME_POINTS))
def test_rerun_finishes_a_killed_rotation(point, setup_factory, ansible):
    task_name, stage = RESUME_POINTS[point]
    s = setup_factory("openrouter")
    # The killed run's lease expires after a second, so the re-run takes it over (tests/integration/test_crash.py).
    proc = start_playbook(ansible, ROTATE, s.inventory(rotate_lease_ttl="1s"), {"rotate_force": True}, s.env)
    output = kill_at_task(proc, task_name)
    assert s.record().get("stage") == stage, output[-3000:]
    orphans = []
    if point == "after-create":
        # The provider made a key whose value died with the run: an orphan.
        assert s.metadata()["current_version"] == 1
        orphans = [k["id"] for k in s.active() if k["id"] != s.old["id"]]
        assert len(orphans) == 1
    if point == "inside-store":
        # The run wrote the key, then died before the record said so.
        record = s.record()
        s.vault.secrets.kv.v2.update_metadata(path=s.kv_path, mount_point=s.mount, custom_metadata=dict(
            record, stage="creating", key_id=record["previous_key_id"], fingerprint=record["previous_fingerprint"],
            pending_key_id=record["key_id"], pending_fingerprint=record["fingerprint"]))
    version_before_rerun = s.metadata()["current_version"]

    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), env=s.env)
    assert result.rc == 0, result
    new_value = s.assert_rotated()
    assert s.key(s.old["id"])["status"] == "disabled"
    assert "stage" not in s.record()
    for orphan in orphans:
        assert s.key(orphan)["status"] == "deleted", "the orphan of the killed run was revoked"
    # No extra Vault version either: one rotation, one new version.
    assert s.metadata()["current_version"] == 2 and version_before_rerun in (1, 2)
    assert len([k for k in s.keys() if k["status"] != "deleted"]) == 2
    assert_no_secret(result.output + output, s.old["value"], new_value, s.admin)


def watch_for_task(proc: subprocess.Popen, task_name: str, timeout: float = 120) -> t.List[str]:
    """Read the playbook's output until ``task_name`` starts; the playbook keeps running."""
    seen: t.List[str] = []
    timer = threading.Timer(timeout, kill_hung, args=(proc.pid, timeout))
    timer.start()
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("TASK [") and task_name in line:
                return seen
        raise AssertionError("the playbook ended before task %r:\n%s" % (task_name, "".join(seen[-80:])))
    finally:
        timer.cancel()


@pytest.mark.slow
def test_someone_else_writes_during_the_rotation(setup_factory, ansible):
    """A CAS conflict at store: only the key this run created is revoked, Vault keeps the other writer's key."""
    s = setup_factory("openrouter")
    # The new key is valid only after 10 s: the other writer's key lands while this run pre-verifies.
    s.emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_delay": 10.0, "revoke_delay": 0})
    proc = start_playbook(ansible, ROTATE, s.inventory(rotate_probe_retries=100), {"rotate_force": True}, s.env)
    try:
        seen = watch_for_task(proc, "Pre-verify | probe the new key")
        theirs = s.emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "rotated-by-hand"})
        s.write_secret(theirs["value"])
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = "".join(seen) + rest
    assert proc.returncode != 0, output
    assert "someone else wrote" in output
    assert s.metadata()["current_version"] == 2 and s.value() == theirs["value"]
    ours = [k for k in s.keys() if k["id"] not in (s.old["id"], theirs["id"])]
    assert len(ours) == 1 and ours[0]["status"] == "deleted", ours
    assert s.key(s.old["id"])["status"] == "active" and s.key(theirs["id"])["status"] == "active"
    record = s.record()
    assert "stage" not in record and "key_id" not in record, "the record forgets the key it no longer describes"
    assert_no_secret(output, s.old["value"], theirs["value"], s.admin)

    # The next rotation adopts the key now in Vault and rotates it.
    s.emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_delay": 0, "revoke_delay": 0})
    again = ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env)
    assert again.rc == 0, again
    assert s.key(theirs["id"])["status"] == "disabled"
    assert s.record()["previous_key_id"] == theirs["id"]


# -- rollback -----------------------------------------------------------------------


def test_rollback_after_disable_brings_old_key_back(setup_factory, ansible):
    s = setup_factory("openrouter")
    assert ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env).rc == 0
    new_value = s.value()
    assert not s.authenticates(s.old["value"])

    result = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env, args=["-l", HOST])
    assert result.rc == 0, result
    assert s.key(s.old["id"])["status"] == "active"
    assert s.authenticates(s.old["value"])
    meta = s.metadata()
    assert meta["current_version"] == 3 and s.value() == s.old["value"]
    record = meta["custom_metadata"]
    assert record["key_id"] == s.old["id"] and record["previous_fingerprint"] == fp(new_value)
    assert record["rolled_back_from"]
    assert_no_secret(result.output, s.old["value"], new_value, s.admin)

    # A second rollback does not swap back: it only verifies again.
    again = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env, args=["-l", HOST])
    assert again.rc == 0, again
    assert recap_changed(again) == 0
    assert s.metadata()["current_version"] == 3


def test_rollback_stops_before_vault_when_the_previous_key_does_not_authenticate(setup_factory, ansible):
    """The previous key is re-enabled, then refused at the provider: Vault keeps serving the new key, and the message
    says so and that the previous key stays re-enabled."""
    s = setup_factory("openrouter")
    assert ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env).rc == 0
    new_value, meta_before = s.value(), s.metadata()
    # every probe (GET /key) refused from here on: the rollback's probe of the previous key fails
    s.emulator.control("POST", "faults", {"provider": "openrouter", "method": "GET", "path": "^/key$",
                                          "status": 401, "count": 50})
    result = ansible.run_playbook(ROLLBACK, inventory=s.inventory(rotate_probe_retries=2), env=s.env, args=["-l", HOST])
    assert result.rc != 0, result
    message = task_result(result, "Rollback | stop before Vault changes")["msg"]
    assert re.fullmatch(re.escape(
        "%s: rollback stopped before Vault was changed: the previous key %s (%s) does not authenticate at openrouter "
        "(the key was rejected: HTTP 401" % (HOST, s.old["id"], fp(s.old["value"]))) + r"[^()]*" + re.escape(
        "). Vault still serves %s (version 2). The previous key was re-enabled; disable it again if it should stay off."
        % fp(new_value)), message), message
    assert s.metadata() == meta_before and s.value() == new_value
    assert s.key(s.old["id"])["status"] == "active"
    assert_no_secret(result.output, s.old["value"], new_value, s.admin)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rollback_check_mode_reports_the_plan_and_changes_nothing(provider, setup_factory, ansible):
    s = setup_factory(provider)
    assert ansible.run_playbook(ROTATE, inventory=s.inventory(), extra_vars={"rotate_force": True}, env=s.env).rc == 0

    def statuses():
        return sorted((k["id"], k["status"], k["name"]) for k in s.keys())

    keys_before, meta_before = statuses(), s.metadata()
    result = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env, args=["-l", HOST], check=True)
    assert result.rc == 0, result
    summary = task_result(result, "Rollback | summary")["msg"]
    assert summary["result"].startswith("would roll back: ")
    assert ("re-enable " + s.old["id"] in summary["result"]) is (provider != "openai")
    assert summary["re_enabled"] in (False, "False")
    assert "was re-enabled" not in result.output
    assert statuses() == keys_before and s.metadata() == meta_before


def test_rollback_after_delete_refuses_and_changes_nothing(setup_factory, ansible):
    s = setup_factory("openrouter")
    rotated = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_retire_state="deleted"),
                                   extra_vars={"rotate_force": True}, env=s.env)
    assert rotated.rc == 0, rotated
    assert s.key(s.old["id"])["status"] == "deleted"
    keys_before, meta_before = s.keys(), s.metadata()

    result = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env, args=["-l", HOST])
    assert result.rc != 0, result
    assert "refusing to roll back" in result.output
    assert s.keys() == keys_before
    meta_after = s.metadata()
    assert meta_after["current_version"] == meta_before["current_version"] == 2
    assert meta_after["custom_metadata"] == meta_before["custom_metadata"]


def test_rollback_needs_named_keys(setup_factory, ansible):
    s = setup_factory("openrouter")
    result = ansible.run_playbook(ROLLBACK, inventory=s.inventory(), env=s.env)
    assert result.rc != 0 and "--limit" in result.output, result
    assert s.metadata()["current_version"] == 1


# -- no key value in any output, even at -vvvv --------------------------------------


def test_verbose_output_holds_no_key_value(setup_factory, ansible):
    s = setup_factory("anthropic")
    canary_console = s.console["value"]
    # The Console key given as a variable (the other way in), at -vvvv.
    inventory = s.inventory()
    del inventory["api_keys"]["hosts"][HOST]["new_api_key_vault_path"]
    result = ansible.run_playbook(ROTATE, inventory=inventory, extra_vars={"rotate_force": True, "new_api_key": canary_console},
                                  env=s.env, verbosity=4)
    assert result.rc == 0, result
    assert s.value() == canary_console
    assert_no_secret(result.output, s.old["value"], canary_console, s.admin, s.env["VAULT_TOKEN"])
    assert_no_secret(json.dumps(result.events), s.old["value"], canary_console, s.admin)

    # A failing rotation at -vvvv: the next Console key never authenticates.
    s.emulator.control("POST", "propagation", {"provider": "anthropic", "new_key_delay": 0, "revoke_delay": 0,
                                               "never_valid": True})
    bad = s.emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "console-made-2"})
    failed = ansible.run_playbook(ROTATE, inventory=s.inventory(rotate_probe_retries=2),
                                  extra_vars={"rotate_force": True, "new_api_key": bad["value"]}, env=s.env, verbosity=4)
    assert failed.rc != 0, failed
    assert "did not authenticate" in failed.output
    assert s.value() == canary_console, "Vault still serves the working key"
    assert s.key(bad["id"])["status"] == "inactive", "the key that never worked was disabled"
    assert_no_secret(failed.output, s.old["value"], canary_console, bad["value"], s.admin, s.env["VAULT_TOKEN"])
    assert_no_secret(json.dumps(failed.events), canary_console, bad["value"], s.admin)
