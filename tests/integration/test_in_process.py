# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules run in the controller's process (action plugins) and as modules: the same results.

The same play runs twice, in-process (the default) and with APIKEYS_IN_PROCESS=false (every
module executed as a module, AnsiballZ), on paths of their own. Every task result is compared,
the parts that differ by nature (timings, paths, versions' times) normalised. The play covers
an option refused by the argument spec, a no_log option echoed back in a message, check mode
with diff, the task's environment: as the only source of VAULT_ADDR and of a token file, an
admin key from a *_FILE, a provider call, and a probe. What the two runs change is read out of
band (hvac, the emulator's state), and no secret is in any output or result of either.
"""

from __future__ import annotations

import json
import os
import re

import hvac
import pytest

from harness import assert_no_secret

NS = "apikeys.rotation."
VOLATILE = {"latency_ms", "request_id", "http", "created_time", "updated_time", "deletion_time", "retry_wait", "rotation_started_at",
            "_ansible_no_log", "start", "end", "delta", "duration", "elapsed"}
CREATED = ("key_id", "fingerprint", "redacted_hint", "hash", "label")
VOLATILE_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?|after [\d.]+ ?s|[\d.]+ ?ms")


def task(name, module, args, **extra):
    item = {"name": name, NS + module: args, "register": "r", "ignore_errors": True}
    item.update(extra)
    return item


def the_play(path, token_file, admin_file, base_url, secret, addr):
    vault_env = {"VAULT_ADDR": addr, "VAULT_TOKEN_FILE": token_file}
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [
        task("refused by the argument spec", "vault_secret_write", {"path": path, "data": {"api_key": secret}, "cas": "two"},
             environment=vault_env),
        task("no Vault address anywhere", "vault_secret_info", {"path": path}),
        task("write, check mode and diff", "vault_secret_write", {"path": path, "data": {"api_key": secret}},
             environment=vault_env, check_mode=True, diff=True),
        task("write", "vault_secret_write", {"path": path, "data": {"api_key": secret}, "cas": 0}, environment=vault_env),
        task("write again: no change", "vault_secret_write", {"path": path, "data": {"api_key": secret}},
             environment=vault_env, diff=True),
        task("a no_log value echoed back", "vault_secret_info", {"path": path + "/" + secret, "token": secret},
             environment={"VAULT_ADDR": addr}),
        task("a check-and-set conflict", "vault_secret_write", {"path": path, "data": {"api_key": secret}, "cas": 7},
             environment=vault_env),
        task("create a provider key", "provider_key_create", {"provider": "openrouter", "name": "made-by-" + path.rsplit("/", 1)[-1],
                                                              "stage_in": {"path": path + ".next"}},
             environment=dict(vault_env, OPENROUTER_MANAGEMENT_KEY_FILE=admin_file, OPENROUTER_BASE_URL=base_url)),
        task("probe it by reference", "api_key_probe", {"provider": "openrouter", "api_key_from": {"path": path + ".next"}},
             environment=dict(vault_env, OPENROUTER_BASE_URL=base_url)),
        task("probe a key that is not one", "api_key_probe", {"provider": "openrouter", "api_key": secret, "base_url": base_url}),
    ]}]


# times that differ between two runs, but must be there, and be a time, on both paths
TIMES = {"answered_at"}


def normalise(value, replacements):
    if isinstance(value, dict):
        return {k: ("<time>" if isinstance(v, float) and v > 0 else v) if k in TIMES else normalise(v, replacements)
                for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [normalise(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return VOLATILE_TEXT.sub("<t>", value)
    return value


@pytest.mark.parametrize("provider_kind", ["openrouter"])
def test_in_process_and_module_give_the_same_results(provider_kind, ansible, openbao, emulator, kv_path, tmp_path):
    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin = emulator.control("POST", "keys", {"provider": provider_kind, "kind": "admin"})["value"]
    token_file, admin_file = tmp_path / "token", tmp_path / "admin"
    token_file.write_text(openbao.root_token)
    admin_file.write_text(admin)
    secret = "sk-or-v1-" + "e" * 64
    runs, made = {}, {}
    for mode, switch in (("inproc", "true"), ("module", "false")):
        path = "%s/%s" % (kv_path, mode)
        play = the_play(path, str(token_file), str(admin_file), emulator.base_url("openrouter"), secret, openbao.addr)
        result = ansible.run_playbook(play, env={"APIKEYS_IN_PROCESS": switch}, verbosity=4)
        assert result.rc == 0, result
        executed = result.output.count("executed as a module (APIKEYS_IN_PROCESS is false)")
        assert executed == (0 if mode == "inproc" else len(play[0]["tasks"])), (mode, executed)
        if mode == "inproc":
            assert "AnsiballZ" not in result.output, "no module is executed on the in-process path"
        else:
            assert "AnsiballZ" in result.output
        # each run makes a key of its own: its id, fingerprint and hint are named alike in both
        created = result.result("create a provider key")["result"]
        replacements = [(path, "<path>"), (mode, "<mode>")] + [(str(created[k]), "<%s>" % k) for k in CREATED if created.get(k)]
        runs[mode] = {e["task"]: dict(normalise(e["result"], replacements), event=e["event"]) for e in result.results()}
        stored = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]
        made[mode] = (stored["data"], stored["metadata"]["version"])
        staged = client.secrets.kv.v2.read_secret_version(path=path + ".next", raise_on_deleted_version=True)["data"]["data"]
        assert_no_secret(result.output + json.dumps(result.events), secret, admin, openbao.root_token, staged["api_key"])
    assert made["inproc"] == made["module"] == ({"api_key": secret}, 1), made
    assert sorted(runs["inproc"]) == sorted(runs["module"])
    for name in runs["inproc"]:
        assert runs["inproc"][name] == runs["module"][name], name
    inproc = runs["inproc"]
    assert "cas" in inproc["refused by the argument spec"]["msg"] and inproc["refused by the argument spec"]["event"] == "failed"
    assert "VAULT_ADDR" in inproc["no Vault address anywhere"]["msg"]
    assert inproc["write, check mode and diff"]["changed"] and inproc["write, check mode and diff"]["diff"]
    assert inproc["write again: no change"]["changed"] is False
    assert inproc["a check-and-set conflict"]["event"] == "failed" and "Check-and-set conflict" in inproc["a check-and-set conflict"]["msg"]
    echoed = inproc["a no_log value echoed back"]
    # masked the way this ansible-core masks no_log values (2.19: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER, 2.21: ********)
    masked = json.dumps(echoed)
    assert echoed["event"] == "failed" and ("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in masked or "/********" in masked), echoed
    assert secret not in masked
    assert inproc["probe it by reference"]["live"] is True
    assert inproc["probe a key that is not one"]["live"] is False
    keys = [k for k in emulator.control("GET", "state")["openrouter"]["keys"] if str(k.get("name", "")).startswith("made-by-")]
    assert len(keys) == 2 and all(k["status"] == "active" for k in keys), keys


def test_a_provider_task_in_process_loads_no_hvac(ansible, emulator, tmp_path):
    """A play of provider tasks never imports hvac, in the worker or the controller (a test action records sys.modules)."""
    probe_dir = tmp_path / "action_plugins"
    probe_dir.mkdir()
    loaded = tmp_path / "loaded.json"
    (probe_dir / "modules_loaded.py").write_text(
        "import json, sys\n"
        "from ansible.plugins.action import ActionBase\n"
        "from ansible_collections.apikeys.rotation.plugins.action.api_key_probe import ActionModule as Probe\n"
        "class ActionModule(Probe):\n"
        "    def run(self, tmp=None, task_vars=None):\n"
        "        result = super().run(tmp, task_vars)\n"
        "        with open(%r, 'w') as out:\n"
        "            json.dump(sorted(m for m in sys.modules if m.split('.')[0] in ('hvac', 'httpx')), out)\n"
        "        return result\n" % str(loaded))
    (probe_dir / "__init__.py").write_text("")
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api"})["value"]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "probe", "modules_loaded": {"provider": "openrouter", "api_key": admin,
                                             "base_url": emulator.base_url("openrouter")}, "register": "r"},
        {"ansible.builtin.assert": {"that": ["r.live"]}}]}]))
    result = ansible.run_playbook(str(playbook), env={"ANSIBLE_ACTION_PLUGINS": str(probe_dir)})
    assert result.rc == 0, result
    names = json.loads(loaded.read_text())
    assert "httpx" in names and not [n for n in names if n.startswith("hvac")], names
    assert not os.path.exists(str(tmp_path / "hvac"))
