# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The concise stdout callback: what changed, what failed and the closing table, nothing else."""

from __future__ import annotations

import json
import os
import re
import subprocess

from harness import BIN_DIR, assert_no_secret
from rotation_world import ROTATE, Services, World, inventory

CONCISE = {"ANSIBLE_STDOUT_CALLBACK": "apikeys.rotation.concise"}


def banners(output: str) -> list:
    return [m.group(1) for m in re.finditer(r"^TASK \[(?:apikeys\.rotation\.rotate : )?(.*?)\] \*+$", output, re.M)]


def test_a_rotation_in_concise_output(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    worlds = [World(services, p, "concise-" + p, kv_path) for p in ("anthropic", "openai", "openrouter")]
    # a fourth key whose secret is missing: its host fails at the plan
    broken = World(services, "openrouter", "concise-broken", kv_path)
    services.vault.secrets.kv.v2.delete_metadata_and_all_versions(path=broken.path, mount_point="secret")
    result = ansible.run_playbook(ROTATE, inventory=inventory(worlds + [broken]), env=dict(services.env, **CONCISE))
    assert result.rc == 2, result.output
    shown = banners(result.stdout)
    # every banner is of a task that changed something, failed, or is the closing table
    changed_tasks = {e["task"].split(" : ")[-1] for e in result.events if e["event"] == "ok" and e["result"].get("changed")}
    failed_tasks = {e["task"].split(" : ")[-1] for e in result.events if e["event"] == "failed"}
    assert set(shown) <= changed_tasks | failed_tasks | {"Report | every key"}, set(shown) - changed_tasks - failed_tasks
    assert "Report | every key" in shown and "Plan | require an existing key, a known stage and a rotation that can finish" in shown
    assert "skipping:" not in result.stdout and "included:" not in result.stdout
    assert not re.search(r"^ok: \[concise-[a-z]+\]$", result.stdout, re.M), "an unchanged result is shown"
    assert "Report | summary" not in result.stdout
    # the failure with its message, and the table naming it
    assert "fatal: [concise-broken]" in result.stdout and "the secret does not exist" in result.stdout
    table = [e for e in result.events if e["task"] == "Report | every key"][0]["result"]["msg"]
    assert any(line.startswith("concise-broken ") and "FAILED: see its error above" in line for line in table), table
    assert table[-1] == "rotate: 4 key(s), 1 FAILED"
    for line in table:
        assert json.dumps(line)[1:-1] in result.stdout
    # every rotated key's changes are shown, one line per key and task
    for world in worlds:
        assert "changed: [%s]" % world.host in result.stdout
        assert world.record().get("rotated_at") and not world.record().get("stage")
    # the same rotation of three other keys in the default output
    others = [World(services, p, "default-" + p, kv_path) for p in ("anthropic", "openai", "openrouter")]
    default = ansible.run_playbook(ROTATE, inventory=inventory(others), env=services.env)
    assert default.rc == 0, default.output
    assert len(result.stdout.splitlines()) * 4 < len(default.stdout.splitlines())
    for world in worlds + [broken]:
        assert_no_secret(result.output, *world.secrets())


def test_concise_shows_everything_at_v_and_renders_in_ansible_doc(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "concise-verbose", kv_path)
    result = ansible.run_playbook(ROTATE, inventory=inventory([world]), env=dict(services.env, **CONCISE), verbosity=1)
    assert result.rc == 0, result.output
    assert "skipping: [concise-verbose]" in result.stdout and "Report | summary" in result.stdout
    doc = subprocess.run([os.path.join(BIN_DIR, "ansible-doc"), "-t", "callback", "apikeys.rotation.concise"],
                         env=ansible.env({}), capture_output=True, text=True, check=False)
    assert doc.returncode == 0 and "ANSIBLE_STDOUT_CALLBACK=apikeys.rotation.concise" in doc.stdout, doc.stderr
