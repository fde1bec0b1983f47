# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leaks: no key value, admin key or Vault token anywhere, whatever the playbook and outcome.

A canary key per provider (made by the emulator, key-shaped, written to Vault) is followed
through every playbook (rotate, probe, rollback, cleanup), in success and in failure
(a new key that never authenticates, a bad admin key, a refused rollback, a key that is
no longer live, a sealed Vault), all at -vvvv, and through ansible-runner's artifacts.
Searched: ansible-playbook's output, the recorded task results, every failed task's msg,
every file under ansible-runner's artifacts/, the emulator's log, OpenBao's server log
and the rotation record in Vault. Searched for: the old key, every new key (read out of
band from Vault with plain hvac after the runs), the admin keys (good and bad), the Vault
token; and, whatever its origin, any complete key-shaped value (``sk-`` + 24 or more key
characters: a masked hint such as ``sk-or-v1-abc...def`` does not match).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import typing as t

import hvac
import pytest
import yaml

from conftest import assert_no_secret
from harness import BIN_DIR, http_json
from test_faults import bring_back, rotate as run_rotation, window
from test_rotation import CLEANUP, HOST, PROBE, ROLLBACK, ROTATE, Setup

PROVIDERS = ("anthropic", "openai", "openrouter")
KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_\-]{24,}")
FAST = {"rotate_probe_delay": 0.2, "rotate_probe_retries": 4, "rotate_verify_successes": 2,
        "rotate_check_retries": 2, "rotate_check_delay": 0.2}
BAD_ADMIN = {"anthropic": "sk-ant-admin01-", "openai": "sk-admin-", "openrouter": "sk-or-v1-"}


class LeakCheck:
    """Counts every (text, secret) pair searched; fails on the first leak, naming the source and the secret's role."""

    def __init__(self) -> None:
        self.checks = 0
        self.texts = 0
        self.failed_msgs = 0

    def text(self, source: str, text: str, named: t.Mapping[str, str]) -> None:
        self.texts += 1
        for label, value in named.items():
            try:
                assert_no_secret(text, value)
            except AssertionError:
                raise AssertionError("the %s leaked into %s" % (label, source)) from None
            self.checks += 1
        found = KEY_SHAPED.search(text)
        assert found is None, "a complete key-shaped value (%s...) in %s at offset %d" % (found.group(0)[:12], source, found.start())
        self.checks += 1

    def result(self, name: str, result, named: t.Mapping[str, str]) -> None:
        """Output, recorded task results and every failed task's msg of one ansible-playbook run."""
        self.text(name + " output", result.output, named)
        self.text(name + " task results", json.dumps(result.events), named)
        for event in result.events:
            if event["event"] == "failed":
                self.failed_msgs += 1
                self.text("%s: msg of failed task %r" % (name, event["task"]), str(event["result"].get("msg", "")), named)

    def file(self, path: str, named: t.Mapping[str, str]) -> None:
        with open(path, "rb") as handle:
            self.text(path, handle.read().decode("utf-8", "replace"), named)


def vault_token(openbao) -> str:
    """A token of its own for the runs (the dev server prints its root token in its log by design)."""
    root = hvac.Client(url=openbao.addr, token=openbao.root_token)
    return root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]


def every_value(client: hvac.Client, path: str) -> t.List[str]:
    """Every key value Vault holds at ``path``, all versions, read out of band."""
    try:
        meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]
    except hvac.exceptions.InvalidPath:
        return []
    values = []
    for version in range(1, meta["current_version"] + 1):
        try:
            read = client.secrets.kv.v2.read_secret_version(path=path, version=version, mount_point="secret",
                                                            raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            continue
        if "api_key" in read["data"]["data"]:  # a staging path's newest version, once used, holds none
            values.append(read["data"]["data"]["api_key"])
    return values


def revoke_out_of_band(s: Setup, key_id: str) -> None:
    """Revoke a key through the provider's own admin API (not through the collection)."""
    base = s.emulator.base_url(s.provider)
    if s.provider == "anthropic":
        status = http_json("POST", base + "/v1/organizations/api_keys/" + key_id, {"status": "inactive"},
                           headers={"x-api-key": s.admin, "anthropic-version": "2023-06-01"})[0]
    elif s.provider == "openai":
        # the key's own service account goes with it (OpenAI's published reference refuses a per-key DELETE)
        account = [k for k in s.keys() if k["id"] == key_id][0]["service_account_id"]
        status = http_json("DELETE", "%s/organization/projects/%s/service_accounts/%s" % (base, s.project, account),
                           headers={"Authorization": "Bearer " + s.admin})[0]
    else:
        status = http_json("PATCH", base + "/keys/" + key_id, {"disabled": True}, headers={"Authorization": "Bearer " + s.admin})[0]
    assert status == 200, status


def secrets_of(s: Setup, token: str, bad_admin: str) -> t.Dict[str, str]:
    named = {"old key": s.old["value"], "admin key": s.admin, "bad admin key": bad_admin, "Vault token": token}
    for index, value in enumerate(every_value(s.vault, s.kv_path) + every_value(s.vault, s.kv_path + "-next")):
        if value != s.old["value"]:
            named["key in Vault (#%d)" % index] = value
    return named


# The modules run in the controller's process (their action plugins); once more with every
# module executed as a module (AnsiballZ), where AnsibleModule's masking works in its own process.
# Each path runs in two halves from a fresh key, so that the longest of them (the module path)
# is two tests that pytest's workers can share: the playbooks succeeding, and failing.
@pytest.mark.parametrize("half", ["succeeding", "failing"])
@pytest.mark.parametrize("provider,path", [(p, "in-process") for p in PROVIDERS] + [("openrouter", "module")])
def test_no_value_in_any_playbook_run(provider, path, half, openbao, emulator, kv_path, ansible):
    """rotate, probe, rollback, cleanup at -vvvv, succeeding or failing: no value anywhere."""
    s = Setup(provider, openbao, emulator, kv_path)
    token = vault_token(openbao)
    env = dict(s.env, VAULT_TOKEN=token, ANSIBLE_PIPELINING="1", APIKEYS_IN_PROCESS="true" if path == "in-process" else "false")
    bad_admin = BAD_ADMIN[provider] + secrets.token_hex(40)
    bad_env = dict(env, **{name: bad_admin for name, value in s.env.items() if value == s.admin})
    inventory = s.inventory(**FAST)
    cleanup_inventory = s.inventory(grace_period="0s", **FAST)
    runs: t.List[t.Tuple[str, t.Any]] = []

    def run(name: str, playbook: str, expect_ok: bool, inv: t.Optional[dict] = None, run_env: t.Optional[dict] = None,
            **kwargs: t.Any) -> t.Any:
        result = ansible.run_playbook(playbook, inventory=inv or inventory, env=run_env or env, verbosity=4, **kwargs)
        assert (result.rc == 0) == expect_ok, "%s: %r" % (name, result)
        runs.append((name, result))
        return result

    if half == "succeeding":
        run("rotate", ROTATE, True, extra_vars={"rotate_force": True})
        run("probe", PROBE, True)
        run("rollback", ROLLBACK, True, args=["-l", HOST])
        failed = run("cleanup: bad admin key", CLEANUP, False, inv=cleanup_inventory, run_env=bad_env)
        assert "401" in failed.output
        run("cleanup", CLEANUP, True, inv=cleanup_inventory)
    else:
        emulator.control("POST", "propagation", {"provider": provider, "never_valid": True})
        if provider == "anthropic":
            s.stage_console_key()  # made after never_valid: it never authenticates
        failed = run("rotate: new key never valid", ROTATE, False, extra_vars={"rotate_force": True})
        assert "did not authenticate" in failed.output
        emulator.control("POST", "propagation", {"provider": provider, "never_valid": False})
        if provider == "anthropic":
            s.stage_console_key()
        failed = run("rotate: bad admin key", ROTATE, False, extra_vars={"rotate_force": True}, run_env=bad_env)
        assert "401" in failed.output
        # A rotation, then a cleanup that deletes its previous key: a rollback must refuse.
        if provider == "anthropic":
            s.stage_console_key()
        run("rotate", ROTATE, True, extra_vars={"rotate_force": True})
        run("cleanup", CLEANUP, True, inv=cleanup_inventory)
        failed = run("rollback: previous key deleted", ROLLBACK, False, args=["-l", HOST])
        assert "refusing to roll back" in failed.output
        revoke_out_of_band(s, s.record()["key_id"])
        failed = run("probe: key not live", PROBE, False)
        assert "NOT LIVE" in failed.output

    named = secrets_of(s, token, bad_admin)
    assert any(label.startswith("key in Vault") for label in named), "the runs made a new key that Vault holds: %s" % sorted(named)
    check = LeakCheck()
    for name, result in runs:
        check.result(name, result, named)
    check.file(emulator.log_path, named)
    check.file(openbao.log_path, named)
    record = s.vault.secrets.kv.v2.read_secret_metadata(path=kv_path, mount_point="secret")["data"]
    check.text("the rotation record", json.dumps(record), named)
    failing_runs = sum(1 for _name, result in runs if result.rc != 0)
    assert failing_runs and check.failed_msgs >= failing_runs, "each failing run has a failed task"
    modules_executed = sum(result.output.count("executed as a module (APIKEYS_IN_PROCESS is false)") for _name, result in runs)
    assert (modules_executed > 20) == (path == "module"), modules_executed
    sys.stdout.write("\nleak checks [%s, %s, %s]: %d runs, %d texts, %d failed-task msgs, %d (text, secret) checks, %d secrets\n"
                     % (provider, path, half, len(runs), check.texts, check.failed_msgs, check.checks, len(named)))


def test_no_value_with_vault_sealed_mid_rotation(raft_openbao, emulator, kv_path, ansible):
    """Vault sealed while the new key is verified (the rescue fails too), at -vvvv, and OpenBao's own log."""
    s = Setup("openrouter", raft_openbao, emulator, kv_path)
    token = vault_token(raft_openbao)
    trigger, extra = window(ansible, "verify", raft_openbao.seal)
    outcome = run_rotation(ansible, s, extra=extra, trigger=trigger, env={"VAULT_TOKEN": token}, verbosity=4)
    assert outcome.rc != 0 and "is sealed" in outcome.output, outcome
    bring_back(raft_openbao)
    named = secrets_of(s, token, "")
    named["root token"] = raft_openbao.root_token
    named.pop("bad admin key")
    assert any(label.startswith("key in Vault") for label in named), "the new key reached Vault before the seal"
    check = LeakCheck()
    check.result("rotate (sealed)", outcome, named)
    check.file(raft_openbao.log_path, named)
    check.file(emulator.log_path, named)
    assert check.failed_msgs >= 1
    sys.stdout.write("\nleak checks [sealed]: %d texts, %d checks\n" % (check.texts, check.checks))


def test_no_value_in_ansible_runner_artifacts(openbao, emulator, kv_path, ansible, tmp_path):
    """One rotation as AWX runs it (ansible-runner, private data dir, -vvvv): every file under artifacts/."""
    s = Setup("openrouter", openbao, emulator, kv_path)
    token = vault_token(openbao)
    pdd = tmp_path / "runner"
    for folder in ("env", "inventory", "project"):
        (pdd / folder).mkdir(parents=True)
    (pdd / "project" / "rotate.yml").write_text("- import_playbook: apikeys.rotation.rotate\n", encoding="utf-8")
    (pdd / "inventory" / "hosts").write_text(json.dumps(s.inventory(**FAST)), encoding="utf-8")
    (pdd / "env" / "extravars").write_text(yaml.safe_dump({"rotate_force": True}), encoding="utf-8")
    (pdd / "env" / "cmdline").write_text("-vvvv", encoding="utf-8")
    envvars = ansible.env(dict(s.env, VAULT_TOKEN=token))
    envvars = {k: v for k, v in envvars.items() if k.startswith(("ANSIBLE_", "VAULT_", "OPENROUTER_", "HOME", "PATH"))
               and k not in ("ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED")}
    # Secrets reach the job as files named by *_FILE variables, as the collection's AWX
    # credential types inject them: ansible-runner writes every environment variable's value
    # to the `command` artifact in plain text.
    secret_dir = tmp_path / "credentials"
    secret_dir.mkdir(mode=0o700)
    for name in [k for k, v in envvars.items() if v in (token, s.admin)]:
        (secret_dir / name).write_text(envvars.pop(name), encoding="utf-8")
        envvars[name + "_FILE"] = str(secret_dir / name)
    assert "VAULT_TOKEN_FILE" in envvars and "OPENROUTER_MANAGEMENT_KEY_FILE" in envvars, sorted(envvars)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VAULT_", "OPENROUTER_", "PYTEST_"))}
    env.update(PATH=envvars["PATH"], HOME=envvars["HOME"])
    proc = subprocess.run([os.path.join(BIN_DIR, "ansible-runner"), "run", str(pdd), "-p", "rotate.yml", "--ident", "rotate"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    artifacts = pdd / "artifacts" / "rotate"
    assert proc.returncode == 0 and (artifacts / "rc").read_text().strip() == "0", proc.stdout[-4000:] + proc.stderr[-2000:]
    assert s.value() != s.old["value"], "the rotation ran"
    named = secrets_of(s, token, "")
    named.pop("bad admin key")
    check = LeakCheck()
    files = []
    for folder, _dirs, names in os.walk(str(artifacts)):
        for name in names:
            files.append(os.path.join(folder, name))
            check.file(files[-1], named)
    assert any("job_events" in f for f in files) and any(f.endswith("stdout") for f in files) and any(f.endswith("command") for f in files)
    check.text("ansible-runner's own output", proc.stdout + proc.stderr, named)
    sys.stdout.write("\nleak checks [ansible-runner]: %d artifact files, %d checks\n" % (len(files), check.checks))
