# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider modules through real ansible-playbook against the provider emulator.

Side effects are read out of band, from the emulator's control API (state and
hits), never through the modules under test. Every run is at -vvvv and its
output is searched for every key value involved.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from harness import assert_no_secret, http_json

NS = "apikeys.rotation."
BILLING = ("/v1/messages", "/chat/completions", "/responses", "/completions", "/embeddings")
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


# -- helpers -------------------------------------------------------------------

def play(tasks, defaults=None, play_vars=None):
    item = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if defaults:
        item["module_defaults"] = {"group/apikeys.rotation.provider": defaults}
    if play_vars:
        item["vars"] = play_vars
    return [item]


def task(name, module, args, **extra):
    item = {"name": name, NS + module: args}
    item.update(extra)
    return item


def public(var):
    """A debug task showing a registered create result without its key value."""
    return {"name": "public " + var,
            "ansible.builtin.debug": {"msg": "{{ %s | dict2items | rejectattr('key', 'equalto', 'api_key') | items2dict }}"
                                             % var}}


def save_value(var, path):
    """Write a created key value to a file for the test's own leak checks (never shown)."""
    copy = {"content": "{{ %s.api_key }}" % var, "dest": path, "mode": "0600"}
    return {"name": "save " + var, "ansible.builtin.copy": copy, "no_log": True}


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def seed(emulator, provider, kind, **extra):
    body = {"provider": provider, "kind": kind}
    body.update(extra)
    return emulator.control("POST", "keys", body)


def state_keys(emulator, provider, kind="api"):
    return [k for k in emulator.control("GET", "state")[provider]["keys"] if k["kind"] == kind]


def hits(emulator):
    return emulator.control("GET", "hits")


def billing_hits(emulator):
    return [r for r in hits(emulator)["requests"] if r["route"] in BILLING]


def msg(result):
    return result["result"].get("msg", "")


# -- create -> probe -> revoke -> probe, per provider ------------------------------

def lifecycle_tasks(provider, name, saved, extra_create=None):
    create_args = {"name": name}
    create_args.update(extra_create or {})
    tasks = [
        task("create", "provider_key_create", create_args, register="created", no_log=True),
        public("created"),
        task("probe new", "api_key_probe", {"provider": provider, "api_key": "{{ created.api_key | default(console_key) }}"},
             register="probe_new"),
    ]
    if provider != "anthropic":
        tasks.insert(1, save_value("created", saved))
    if provider == "openai":
        tasks.append(task("disable", "provider_key_revoke", {"key_id": "{{ created.key_id }}", "state": "disabled"},
                          ignore_errors=True))
    else:
        tasks += [
            task("disable", "provider_key_revoke", {"key_id": "{{ created.key_id }}", "state": "disabled"}),
            task("probe disabled", "api_key_probe",
                 {"provider": provider, "api_key": "{{ created.api_key | default(console_key) }}"}),
        ]
    tasks += [
        task("delete", "provider_key_revoke", {"key_id": "{{ created.key_id }}", "state": "deleted"}),
        task("delete again", "provider_key_revoke", {"key_id": "{{ created.key_id }}", "state": "deleted"}),
        task("probe deleted", "api_key_probe", {"provider": provider, "api_key": "{{ created.api_key | default(console_key) }}"}),
        task("info", "provider_key_info", {"key_id": "{{ created.key_id }}"}, register="info"),
    ]
    return tasks


def check_lifecycle(result, provider, emulator, name, secrets):
    assert result.rc == 0, result
    created = result.result("public created")["result"]["msg"]
    assert created["changed"] is True and created["name"] == name
    assert created["fingerprint"].startswith("sha256:") and len(created["fingerprint"]) == 19
    assert "api_key" not in created
    assert result.result("probe new")["result"]["live"] is True
    assert result.result("probe new")["result"]["status"] == 200
    if provider == "openai":
        disable = result.result("disable")
        assert disable["event"] == "failed"
        assert "OpenAI has no way to disable a key" in msg(disable) and "Nothing was changed" in msg(disable)
    else:
        assert result.result("disable")["result"]["changed"] is True
        probe = result.result("probe disabled")["result"]
        assert probe["live"] is False and probe["status"] == 401 and probe.get("failed") is not True
    deleted = result.result("delete")["result"]
    assert deleted["changed"] is True
    again = result.result("delete again")["result"]
    assert again["changed"] is False
    probe = result.result("probe deleted")["result"]
    assert probe["live"] is False and probe["status"] == 401
    # out of band: the emulator's own record of the key
    entry = [k for k in state_keys(emulator, provider) if k["id"] == created["key_id"]]
    assert len(entry) == 1
    # OpenAI names the first key of a new service account "Secret Key"; the account carries the name
    assert entry[0]["name"] == ("Secret Key" if provider == "openai" else name)
    assert entry[0]["status"] == {"anthropic": "archived", "openai": "deleted", "openrouter": "deleted"}[provider]
    assert entry[0]["fingerprint"] == created["fingerprint"]
    assert deleted["previous_status"] == ("inactive" if provider == "anthropic" else
                                          "active" if provider == "openai" else "disabled")
    assert billing_hits(emulator) == []
    assert_no_secret(result.output, *secrets)


def test_openrouter_lifecycle_admin_key_from_env(ansible, emulator, tmp_path):
    admin = seed(emulator, "openrouter", "admin")["value"]
    saved = str(tmp_path / "created")
    plays = play(lifecycle_tasks("openrouter", "chat-r1", saved), defaults={"provider": "openrouter"})
    result = ansible.run_playbook(plays, verbosity=4, env={"OPENROUTER_MANAGEMENT_KEY": admin,
                                                           "OPENROUTER_BASE_URL": emulator.base_url("openrouter")})
    check_lifecycle(result, "openrouter", emulator, "chat-r1", [admin, read(saved)])
    disable_requests = [r for r in hits(emulator)["requests"] if r["method"] == "PATCH"]
    assert len(disable_requests) == 1


def test_openai_lifecycle_module_defaults(ansible, emulator, tmp_path):
    admin = seed(emulator, "openai", "admin")["value"]
    project = emulator.control("POST", "openai/projects", {"name": "search"})["id"]
    saved = str(tmp_path / "created")
    defaults = {"provider": "openai", "base_url": emulator.base_url("openai"), "admin_key": "{{ admin_key }}",
                "openai_project_id": project}
    plays = play(lifecycle_tasks("openai", "search-r1", saved), defaults=defaults)
    result = ansible.run_playbook(plays, verbosity=4, extra_vars={"admin_key": admin})
    check_lifecycle(result, "openai", emulator, "search-r1", [admin, read(saved)])
    created = result.result("public created")["result"]["msg"]
    # without openai_service_account_id a service account named after the key owns it
    accounts = emulator.control("GET", "state")["openai"]["service_accounts"]
    assert [a["name"] for a in accounts if a["id"] == created["service_account_id"]] == ["search-r1"]
    # the key was its account's only key: revoking it deleted the account (the per-key DELETE is refused by
    # OpenAI's published reference for a service account's key, and was never sent)
    deletes = [r["route"] for r in hits(emulator)["requests"] if r["method"] == "DELETE"]
    assert deletes == ["/organization/projects/{project_id}/service_accounts/{service_account_id}"]
    assert [a["status"] for a in accounts if a["id"] == created["service_account_id"]] == ["deleted"]


@pytest.mark.parametrize("reading", ["refuse", "allow"])
def test_openai_second_key_on_a_configured_account(ansible, emulator, reading):
    """A key on openai_service_account_id: never revoked by deleting the account (the live key is on it too)."""
    emulator.control("POST", "behaviour", {"openai_service_account_key_delete": reading})
    admin = seed(emulator, "openai", "admin")["value"]
    live = seed(emulator, "openai", "api", name="live")
    old = seed(emulator, "openai", "api", name="old", project_id=live["project_id"],
               service_account_id=live["service_account_id"])
    defaults = {"provider": "openai", "base_url": emulator.base_url("openai"), "admin_key": "{{ admin_key }}",
                "openai_project_id": live["project_id"], "openai_service_account_id": live["service_account_id"]}
    delete = {"key_id": old["id"], "state": "deleted", "protect_key_id": live["id"]}
    keep = {"key_id": old["id"], "state": "deleted", "on_refused": "warn"}
    tasks = [task("delete", "provider_key_revoke", delete, register="gone", ignore_errors=True),
             task("delete or keep", "provider_key_revoke", keep, register="kept")]
    result = ansible.run_playbook(play(tasks, defaults=defaults), verbosity=4, extra_vars={"admin_key": admin})
    assert result.rc == 0, result
    statuses = {k["id"]: k["status"] for k in state_keys(emulator, "openai")}
    assert statuses[live["id"]] == "active"
    accounts = emulator.control("GET", "state")["openai"]["service_accounts"]
    assert [a["status"] for a in accounts] == ["active"]
    gone, kept = result.result("delete"), result.result("delete or keep")["result"]
    if reading == "refuse":
        assert gone["event"] == "failed"
        assert "%s STAYS ACTIVE" % old["id"] in msg(gone) and "OpenAI dashboard" in msg(gone)
        assert kept["kept_active"] is True and kept["changed"] is False and kept["status"] == "active"
        assert any("STAYS ACTIVE" in w for w in kept.get("warnings", []))
        assert statuses[old["id"]] == "active"
    else:
        assert gone["result"]["changed"] is True and gone["result"]["service_account_deleted"] is None
        assert kept["changed"] is False and kept["kept_active"] is False
        assert statuses[old["id"]] == "deleted"
    assert_no_secret(result.output, admin, live["value"], old["value"])


def test_anthropic_adopt_lifecycle_admin_key_as_option(ansible, emulator):
    admin = seed(emulator, "anthropic", "admin")["value"]
    console = seed(emulator, "anthropic", "api", name="made in console")
    seed(emulator, "anthropic", "api", name="unrelated")
    conn = {"provider": "anthropic", "base_url": emulator.base_url("anthropic"), "admin_key": "{{ admin_key }}"}
    tasks = lifecycle_tasks("anthropic", "wishlist-r1", None, extra_create={"api_key": "{{ console_key }}"})
    for item in tasks:
        args = item.get(NS + "provider_key_create") or item.get(NS + "provider_key_revoke") \
            or item.get(NS + "provider_key_info")
        if args is not None:
            args.update(conn)
        elif NS + "api_key_probe" in item:
            item[NS + "api_key_probe"]["base_url"] = conn["base_url"]
    result = ansible.run_playbook(play(tasks), verbosity=4, extra_vars={"admin_key": admin,
                                                                        "console_key": console["value"]})
    check_lifecycle(result, "anthropic", emulator, "wishlist-r1", [admin, console["value"]])
    created = result.result("public created")["result"]["msg"]
    assert created["key_id"] == console["id"]
    assert created["fingerprint"] == console["fingerprint"]
    assert result.result("info")["result"]["api_keys"][0]["status"] == "archived"
    others = [k for k in state_keys(emulator, "anthropic") if k["id"] != console["id"]]
    assert [(k["name"], k["status"]) for k in others] == [("unrelated", "active")]


# -- re-running create with the same name ----------------------------------------------

@pytest.mark.parametrize("provider", ["openrouter", "openai"])
def test_rerun_create_finds_the_orphan_and_replaces_it(ansible, emulator, tmp_path, provider):
    admin = seed(emulator, provider, "admin")["value"]
    defaults = {"provider": provider, "base_url": emulator.base_url(provider), "admin_key": "{{ admin_key }}"}
    if provider == "openai":
        # each key on a service account of its own: an orphan is removed with its account under either
        # reading of OpenAI's delete (test_openai_orphan_on_a_shared_account_* covers the configured account)
        project = emulator.control("POST", "openai/projects", {"name": "p"})["id"]
        defaults.update(openai_project_id=project)
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    tasks = [
        task("create", "provider_key_create", {"name": "app-r1"}, register="one", no_log=True),
        save_value("one", first),
        public("one"),
        task("create again", "provider_key_create", {"name": "app-r1"}, register="two", no_log=True,
             ignore_errors=True),
        {"name": "why", "ansible.builtin.debug": {"msg": "{{ two.msg }}"}},
        task("create replacing", "provider_key_create", {"name": "app-r1", "on_existing": "revoke"},
             register="three", no_log=True),
        save_value("three", second),
        public("three"),
    ]
    started = time.time()
    result = ansible.run_playbook(play(tasks, defaults=defaults), verbosity=4, extra_vars={"admin_key": admin})
    assert result.rc == 0, result
    one = result.result("public one")["result"]["msg"]
    three = result.result("public three")["result"]["msg"]
    reason = result.result("why")["result"]["msg"]
    # when the provider's answer came, by this machine's clock (the role times pre-verify from it)
    assert started < one["answered_at"] < three["answered_at"] < time.time()
    assert "1 key(s) named 'app-r1' already exist" in reason and one["key_id"] in reason
    assert "on_existing=revoke" in reason
    assert three["orphans_revoked"] == [one["key_id"]] and three["changed"] is True
    accounts = {a["id"]: a["name"] for a in emulator.control("GET", "state")["openai"]["service_accounts"]}
    # OpenAI: the key is "Secret Key", its own service account is named app-r1
    named = [k for k in state_keys(emulator, provider)
             if k["name"] == "app-r1" or accounts.get(k.get("service_account_id")) == "app-r1"]
    assert sorted((k["id"], k["status"]) for k in named) == sorted([(one["key_id"], "deleted"),
                                                                    (three["key_id"], "active")])
    assert read(first) != read(second)
    assert_no_secret(result.output, admin, read(first), read(second))


def test_anthropic_readopt_is_unchanged(ansible, emulator):
    admin = seed(emulator, "anthropic", "admin")["value"]
    console = seed(emulator, "anthropic", "api", name="console")
    args = {"provider": "anthropic", "base_url": emulator.base_url("anthropic"), "admin_key": "{{ admin_key }}",
            "name": "wishlist-r2", "api_key": "{{ console_key }}"}
    tasks = [task("adopt", "provider_key_create", args, no_log=True, register="a1"),
             task("adopt again", "provider_key_create", args, no_log=True, register="a2"),
             {"name": "show", "ansible.builtin.debug": {"msg": "{{ [a1.changed, a2.changed, a2.key_id, a2.name] }}"}}]
    result = ansible.run_playbook(play(tasks), verbosity=4,
                                  extra_vars={"admin_key": admin, "console_key": console["value"]})
    assert result.rc == 0, result
    assert result.result("show")["result"]["msg"] == [True, False, console["id"], "wishlist-r2"]
    renames = [r for r in hits(emulator)["requests"] if r["method"] == "POST"]
    assert len(renames) == 1
    assert [k["name"] for k in state_keys(emulator, "anthropic")] == ["wishlist-r2"]
    assert_no_secret(result.output, admin, console["value"])


def test_anthropic_adopt_errors_are_clear(ansible, emulator, tmp_path):
    admin = seed(emulator, "anthropic", "admin")["value"]
    openrouter_key = seed(emulator, "openrouter", "api")["value"]
    args = {"provider": "anthropic", "base_url": emulator.base_url("anthropic"), "admin_key": "{{ admin_key }}",
            "name": "wishlist-r3"}
    tasks = [
        task("no key", "provider_key_create", dict(args), ignore_errors=True),
        task("wrong provider key", "provider_key_create", dict(args, api_key="{{ other_key }}"), ignore_errors=True),
        task("admin key as api key", "provider_key_create", dict(args, api_key="{{ admin_key }}"), ignore_errors=True),
    ]
    result = ansible.run_playbook(play(tasks), verbosity=4, extra_vars={"admin_key": admin, "other_key": openrouter_key})
    assert result.rc == 0, result
    assert "cannot create keys by API" in msg(result.result("no key"))
    wrong = msg(result.result("wrong provider key"))
    assert wrong.startswith("api_key (fingerprint sha256:") and "is not an Anthropic key" in wrong
    assert "looks like an OpenRouter key" in wrong
    assert "looks like an Anthropic admin key" in msg(result.result("admin key as api key"))
    assert [r for r in hits(emulator)["requests"] if r["method"] == "POST"] == []
    assert_no_secret(result.output, admin, openrouter_key)


# -- retries ---------------------------------------------------------------------------

def test_429_with_retry_after_is_retried_admin_key_from_file(ansible, emulator, tmp_path):
    admin = seed(emulator, "openrouter", "admin")["value"]
    admin_file = tmp_path / "management-key"
    admin_file.write_text(admin + "\n")
    seed(emulator, "openrouter", "api", name="existing")
    emulator.control("POST", "faults", {"provider": "openrouter", "method": "GET", "path": "^/keys$", "status": 429,
                                        "retry_after": 1, "count": 1})
    args = {"provider": "openrouter", "base_url": emulator.base_url("openrouter")}
    result = ansible.run_playbook(play([task("list", "provider_key_info", args)]), verbosity=4,
                                  env={"OPENROUTER_MANAGEMENT_KEY_FILE": str(admin_file)})
    assert result.rc == 0, result
    listed = result.result("list")["result"]
    assert [k["name"] for k in listed["api_keys"]] == ["existing"]
    assert listed["http"]["retries"] == 1 and listed["http"]["retry_wait"] == 1.0
    assert hits(emulator)["counts"]["openrouter GET /keys"] == 2
    assert [r["status"] for r in hits(emulator)["requests"]] == [429, 200]
    assert_no_secret(result.output, admin)


def test_401_is_not_retried_and_the_key_is_not_shown(ansible, emulator):
    bogus = "sk-ant-admin01-" + "Q" * 93 + "AA"
    args = {"provider": "anthropic", "base_url": emulator.base_url("anthropic"), "admin_key": "{{ admin_key }}"}
    result = ansible.run_playbook(play([task("list", "provider_key_info", args)]), verbosity=4,
                                  extra_vars={"admin_key": bogus})
    assert result.rc != 0
    failed = result.result("list")
    assert failed["event"] == "failed"
    assert failed["result"]["status"] == 401
    assert failed["result"]["error_type"] == "authentication_error"
    assert failed["result"]["request_id"].startswith("req_")
    assert "HTTP 401 authentication_error" in msg(failed)
    assert hits(emulator)["counts"] == {"anthropic GET /v1/organizations/api_keys": 1}
    assert_no_secret(result.output, bogus)


# -- check mode ----------------------------------------------------------------------

def test_check_mode_sends_only_gets(ansible, emulator):
    admins = {p: seed(emulator, p, "admin")["value"] for p in ("anthropic", "openai", "openrouter")}
    project = emulator.control("POST", "openai/projects", {"name": "p"})["id"]
    console = seed(emulator, "anthropic", "api", name="console")
    existing = {"openrouter": seed(emulator, "openrouter", "api", name="old"),
                "openai": seed(emulator, "openai", "api", project_id=project, name="old")}
    before = emulator.control("GET", "state")
    tasks = []
    for provider in ("anthropic", "openai", "openrouter"):
        conn = {"provider": provider, "base_url": emulator.base_url(provider), "admin_key": admins[provider]}
        if provider == "openai":
            conn["openai_project_id"] = project
        create = dict(conn, name="new-r1")
        if provider == "anthropic":
            create["api_key"] = console["value"]
        target = console["id"] if provider == "anthropic" else existing[provider]["id"]
        state = "deleted" if provider == "openai" else "disabled"
        tasks += [task("create " + provider, "provider_key_create", create, register="c_" + provider, no_log=True),
                  {"name": "show " + provider, "ansible.builtin.debug": {
                      "msg": "{{ [c_%s.changed, c_%s.key_id, c_%s.name] }}" % (provider, provider, provider)}},
                  task("revoke " + provider, "provider_key_revoke", dict(conn, key_id=target, state=state))]
    result = ansible.run_playbook(play(tasks), verbosity=4, check=True, diff=True)
    assert result.rc == 0, result
    assert result.result("show anthropic")["result"]["msg"] == [True, console["id"], "new-r1"]
    assert result.result("show openai")["result"]["msg"] == [True, None, "new-r1"]
    assert result.result("show openrouter")["result"]["msg"] == [True, None, "new-r1"]
    for provider in ("anthropic", "openai", "openrouter"):
        revoke = result.result("revoke " + provider)["result"]
        assert revoke["changed"] is True and revoke["previous_status"] == "active"
    methods = {r["method"] for r in hits(emulator)["requests"]}
    assert methods == {"GET"}
    assert _same_keys(before, emulator.control("GET", "state"))
    assert_no_secret(result.output, console["value"], existing["openrouter"]["value"], existing["openai"]["value"],
                     *admins.values())


def _same_keys(before, after):
    strip = ("last_used_at", "authenticates")
    for provider in ("anthropic", "openai", "openrouter"):
        left = [{k: v for k, v in key.items() if k not in strip} for key in before[provider]["keys"]]
        right = [{k: v for k, v in key.items() if k not in strip} for key in after[provider]["keys"]]
        if left != right:
            return False
    return True


# -- probe -------------------------------------------------------------------------

def test_probe_outcomes_and_bad_input(ansible, emulator, tmp_path):
    live = {p: seed(emulator, p, "api")["value"] for p in ("anthropic", "openai", "openrouter")}
    unknown = "sk-or-v1-" + "0" * 64
    emulator.control("POST", "faults", {"provider": "openai", "path": "^/models$", "status": 503, "count": 5})
    # refused by its first 3 authentications: this check, then the first two probes of "until live"
    emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_refusals": 3, "revoke_delay": 0})
    late = seed(emulator, "openrouter", "api")["value"]
    emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_refusals": 0})
    assert http_json("GET", emulator.base_url("openrouter") + "/key", headers={"Authorization": "Bearer " + late})[0] == 401

    def probe(name, provider, key, **extra):
        args = {"provider": provider, "api_key": key, "base_url": emulator.base_url(provider), "retries": 0}
        args.update(extra)
        return task(name, "api_key_probe", args, register=name.replace(" ", "_"))

    tasks = [
        dict(probe("until live", "openrouter", "{{ late_key }}"), until="until_live.live", retries=40, delay=1),
        probe("anthropic live", "anthropic", "{{ keys.anthropic }}"),
        probe("openrouter unknown", "openrouter", unknown),
        probe("openai 503", "openai", "{{ keys.openai }}"),
        probe("unreachable", "openrouter", "{{ keys.openrouter }}", base_url="http://127.0.0.1:9/api/v1"),
        probe("wrong format", "openai", "{{ keys.anthropic }}") | {"ignore_errors": True},
        task("empty key", "api_key_probe", {"provider": "openai", "api_key": ""}, ignore_errors=True),
        task("no provider", "api_key_probe", {"api_key": "{{ keys.openai }}"}, ignore_errors=True),
        task("unknown provider", "api_key_probe", {"provider": "mistral", "api_key": "{{ keys.openai }}"},
             ignore_errors=True),
    ]
    result = ansible.run_playbook(play(tasks, play_vars={"keys": "{{ probe_keys }}"}), verbosity=4,
                                  extra_vars={"probe_keys": live, "late_key": late})
    assert result.rc == 0, result
    got = {name: result.result(name)["result"] for name in
           ("anthropic live", "openrouter unknown", "openai 503", "unreachable", "until live")}
    assert got["anthropic live"]["live"] is True and got["anthropic live"]["changed"] is False
    assert (got["openrouter unknown"]["live"], got["openrouter unknown"]["status"]) == (False, 401)
    assert (got["openai 503"]["live"], got["openai 503"]["status"]) == (False, 503)
    assert "the provider failed" in got["openai 503"]["reason"]
    assert (got["unreachable"]["live"], got["unreachable"]["status"]) == (False, None)
    assert got["until live"]["live"] is True and got["until live"]["attempts"] == 3
    for name in got:
        assert result.result(name)["event"] == "ok"
    assert "is not an OpenAI key" in msg(result.result("wrong format"))
    assert "looks like an Anthropic API key" in msg(result.result("wrong format"))
    assert "api_key is empty" in msg(result.result("empty key"))
    assert "missing parameter(s) required by 'api_key': provider" in msg(result.result("no provider")) \
        or "provider is required with api_key" in msg(result.result("no provider"))
    assert "value of provider must be one of" in msg(result.result("unknown provider"))
    for name in ("wrong format", "empty key", "no provider", "unknown provider"):
        assert result.result(name)["event"] == "failed", name
    assert billing_hits(emulator) == []
    counts = hits(emulator)["counts"]
    assert set(counts) <= {"anthropic GET /v1/models", "openai GET /models", "openrouter GET /key"}
    assert_no_secret(result.output, late, unknown, *live.values())


def test_probe_consecutive_successes_in_one_run(ansible, emulator):
    """successes=N sends N probes in one module run (counted at the emulator) and stops at the first failure."""
    key = seed(emulator, "anthropic", "api")["value"]
    base = emulator.base_url("anthropic")
    probe_args = {"provider": "anthropic", "api_key": "{{ probe_key }}", "base_url": base, "retries": 0,
                  "successes": 3, "interval": 0.2}
    result = ansible.run_playbook(play([task("three in a row", "api_key_probe", probe_args)]), verbosity=4,
                                  extra_vars={"probe_key": key})
    assert result.rc == 0, result
    got = result.result("three in a row")["result"]
    assert (got["live"], got["probes"], got["successes"], got["first_failure"]) == (True, 3, 3, None)
    assert got["http"]["requests"] == 3
    assert hits(emulator)["counts"] == {"anthropic GET /v1/models": 3}
    assert_no_secret(result.output, key)

    # Live at the first probe, then the provider fails: a second thread watches the emulator's counter and,
    # once the first GET arrived, makes the next ones answer 503 during the module's 3 s wait.
    emulator.control("DELETE", "hits")

    def break_after_first_probe():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answered = [r["status"] for r in hits(emulator)["requests"] if r["route"] == "/v1/models"]
            if answered and answered[0] is not None:  # answered, not only received
                emulator.control("POST", "faults", {"provider": "anthropic", "path": "^/v1/models$", "status": 503,
                                                    "count": 10})
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=break_after_first_probe, daemon=True)
    watcher.start()
    probe_args.update(successes=4, interval=3)
    result = ansible.run_playbook(play([task("fails after live", "api_key_probe", probe_args)]), verbosity=4,
                                  extra_vars={"probe_key": key})
    watcher.join(timeout=5)
    assert result.rc == 0, result
    assert result.result("fails after live")["event"] == "ok"
    got = result.result("fails after live")["result"]
    assert (got["live"], got["probes"], got["successes"], got["status"]) == (False, 2, 1, 503)
    assert got["first_failure"].startswith("the provider failed: HTTP 503")
    assert got["reason"].endswith("(probe 2 of 4, after 1 success)")
    assert hits(emulator)["counts"] == {"anthropic GET /v1/models": 2}
    assert billing_hits(emulator) == []
    assert_no_secret(result.output, key)


class HealthApp:
    """A tiny application key health endpoint: path -> (status, JSON body)."""

    def __init__(self, answers):
        answers_ref = answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body = answers_ref.get(self.path, (404, {"error": "no such path"}))
                data = json.dumps(body).encode("utf-8") if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def health_app():
    apps = []

    def start(answers):
        app = HealthApp(answers)
        apps.append(app)
        return app
    yield start
    for app in apps:
        app.close()


def test_probe_health_url_mode(ansible, health_app):
    expected = "sha256:0123456789ab"
    app = health_app({
        "/match": (200, {"live": True, "fingerprint": expected}),
        "/full": (200, {"live": True, "fingerprint": "sha256:0123456789ab" + "cd" * 26}),
        "/other": (200, {"live": True, "fingerprint": "sha256:ffffffffffff"}),
        "/down": (200, {"live": False, "fingerprint": expected}),
        "/error": (500, {"live": True, "fingerprint": expected}),
        "/garbage": (200, b"not json"),
    })

    def probe(name, url, **extra):
        args = {"health_url": url, "expected_fingerprint": expected, "retries": 0}
        args.update(extra)
        return task(name, "api_key_probe", args)

    tasks = [probe(p.strip("/"), app.url + p) for p in ("/match", "/full", "/other", "/down", "/error", "/garbage")]
    tasks += [
        probe("closed port", "http://127.0.0.1:9/healthz"),
        probe("not http", "ftp://app.internal/healthz") | {"ignore_errors": True},
        probe("bad fingerprint", app.url + "/match", expected_fingerprint="abc") | {"ignore_errors": True},
        task("no fingerprint", "api_key_probe", {"health_url": app.url + "/match"}, ignore_errors=True),
    ]
    result = ansible.run_playbook(play(tasks), verbosity=4, check=True)
    assert result.rc == 0, result
    names = ("match", "full", "other", "down", "error", "garbage", "closed port")
    outcome = {name: result.result(name)["result"] for name in names}
    assert outcome["match"]["live"] is True and outcome["match"]["reported_fingerprint"] == expected
    assert outcome["match"]["mode"] == "health" and outcome["match"]["changed"] is False
    assert outcome["full"]["live"] is True
    assert outcome["other"]["live"] is False and outcome["other"]["fingerprint"] == "sha256:ffffffffffff"
    assert outcome["down"]["live"] is False and outcome["down"]["reported_live"] is False
    assert (outcome["error"]["live"], outcome["error"]["status"]) == (False, 500)
    assert outcome["garbage"]["live"] is False and "JSON contract" in outcome["garbage"]["reason"]
    assert (outcome["closed port"]["live"], outcome["closed port"]["status"]) == (False, None)
    for name in outcome:
        assert result.result(name)["event"] == "ok", name
    assert "health_url must be an https:// URL" in msg(result.result("not http"))
    assert "expected_fingerprint must be sha256:" in msg(result.result("bad fingerprint"))
    assert "expected_fingerprint" in msg(result.result("no fingerprint"))
    for name in ("not http", "bad fingerprint", "no fingerprint"):
        assert result.result(name)["event"] == "failed", name


# -- revoke protection ---------------------------------------------------------------

def test_refuses_to_revoke_the_protected_key(ansible, emulator):
    admin = seed(emulator, "openrouter", "admin")["value"]
    current = seed(emulator, "openrouter", "api", name="current")
    defaults = {"provider": "openrouter", "base_url": emulator.base_url("openrouter"), "admin_key": "{{ admin_key }}"}
    tasks = [
        task("by fingerprint", "provider_key_revoke",
             {"key_id": current["id"], "fingerprint": current["fingerprint"],
              "protect_fingerprint": current["fingerprint"], "state": "deleted"}, ignore_errors=True),
        task("by key id", "provider_key_revoke",
             {"key_id": current["id"], "protect_key_id": current["id"]}, ignore_errors=True),
        task("other key is fine", "provider_key_revoke",
             {"key_id": current["id"], "protect_key_id": "someotherhash", "protect_fingerprint": "sha256:000000000000",
              "fingerprint": current["fingerprint"]}, check_mode=True),
    ]
    result = ansible.run_playbook(play(tasks, defaults=defaults), verbosity=4, extra_vars={"admin_key": admin})
    assert result.rc == 0, result
    for name, words in (("by fingerprint", "protect_fingerprint"), ("by key id", "protect_key_id")):
        failed = result.result(name)
        assert failed["event"] == "failed"
        assert "refusing to set key %s" % current["id"] in msg(failed) and words in msg(failed)
        assert "Nothing was changed" in msg(failed)
    assert result.result("other key is fine")["result"]["changed"] is True
    [entry] = state_keys(emulator, "openrouter")
    assert entry["status"] == "active"
    assert {r["method"] for r in hits(emulator)["requests"]} == {"GET"}
    assert len(hits(emulator)["requests"]) == 1
    assert_no_secret(result.output, admin, current["value"])


def test_provider_modules_do_not_load_hvac(collections_path):
    """Importing the provider modules (and so every provider file) never loads hvac."""
    code = ("import sys\n"
            "from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, provider_class\n"
            "import ansible_collections.apikeys.rotation.plugins.modules.%s\n"
            "for name in PROVIDER_NAMES:\n"
            "    provider_class(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hvac', 'httpx')))\n")
    for module in ("provider_key_create", "provider_key_info", "api_key_probe", "provider_key_revoke"):
        proc = subprocess.run([sys.executable, "-c", code % module], env=dict(os.environ, PYTHONPATH=collections_path),
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        loaded = proc.stdout.strip()
        assert "'httpx'" in loaded and "hvac" not in loaded, (module, loaded)


# -- keys by reference: the value moves between Vault and the provider inside the modules ------

def fp_of(value):
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def test_keys_by_reference_never_leave_the_modules(ansible, emulator, openbao, kv_path):
    """stage_in, api_key_from, match_api_key_from and data_from_path: no task result holds a key value."""
    import hvac  # pylint: disable=import-outside-toplevel

    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin = seed(emulator, "openrouter", "admin")["value"]
    env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token,
           "OPENROUTER_MANAGEMENT_KEY": admin, "OPENROUTER_BASE_URL": emulator.base_url("openrouter")}
    next_path, key_path = kv_path + ".next", kv_path
    result = ansible.run_playbook(play([
        task("create", "provider_key_create", {"provider": "openrouter", "name": "by-ref",
                                               "stage_in": {"path": next_path}}, register="made"),
        task("probe", "api_key_probe", {"provider": "openrouter",
                                        "api_key_from": {"path": next_path, "version": "{{ made.staged_version }}"}},
             register="probed"),
        task("store", "vault_secret_write", {"path": key_path, "data_from_path": next_path,
                                             "data_from_version": "{{ made.staged_version }}"}, register="stored"),
        task("match", "provider_key_info", {"provider": "openrouter", "match_api_key_from": {"path": key_path}},
             register="matched"),
        {"name": "show", "ansible.builtin.debug": {"msg": "{{ made }} {{ probed }} {{ stored }} {{ matched }}"}},
        {"name": "check", "ansible.builtin.assert": {"that": [
            "made.api_key is not defined", "made.staged_version == 1", "probed.live",
            "probed.fingerprint == made.fingerprint", "stored.fingerprints.api_key == made.fingerprint",
            "matched.matching_key_ids == [made.key_id]"]}},
    ]), env=env, verbosity=4)
    assert result.rc == 0, result.stdout[-3000:]
    value = client.secrets.kv.v2.read_secret_version(path=key_path, raise_on_deleted_version=True)["data"]["data"]["api_key"]
    staged = client.secrets.kv.v2.read_secret_version(path=next_path, raise_on_deleted_version=True)["data"]["data"]
    assert staged == {"api_key": value}
    made = [k for k in state_keys(emulator, "openrouter") if k["name"] == "by-ref"]
    assert len(made) == 1 and made[0]["status"] == "active" and made[0]["fingerprint"] == fp_of(value)
    assert_no_secret(result.output + json.dumps(result.events), value, admin, openbao.root_token)

    # a reference to nothing names the option and changes nothing
    before = state_keys(emulator, "openrouter")
    refused = ansible.run_playbook(play([
        task("probe", "api_key_probe", {"provider": "openrouter", "api_key_from": {"path": kv_path + ".absent"}}),
    ]), env=env)
    assert refused.rc != 0 and "api_key_from: secret/%s.absent does not exist" % kv_path in refused.output, refused
    no_addr = {k: v for k, v in env.items() if k != "VAULT_ADDR"}
    refused = ansible.run_playbook(play([
        task("create", "provider_key_create", {"provider": "openrouter", "name": "by-ref-2",
                                               "stage_in": {"path": next_path}}),
    ]), env=no_addr)
    assert refused.rc != 0 and "stage_in needs the Vault address: set VAULT_ADDR" in refused.output, refused
    assert "Traceback" not in refused.output
    assert state_keys(emulator, "openrouter") == before, "Vault is checked before a key is made"


def test_create_keeps_the_record_in_step(ansible, emulator, openbao, kv_path):
    """record_in: the record is written before the provider is asked and names the new key as pending after it;
    a record Vault refuses means no key is made; check mode writes nothing."""
    import hvac  # pylint: disable=import-outside-toplevel

    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin = seed(emulator, "openrouter", "admin")["value"]
    current = seed(emulator, "openrouter", "api", name="current")
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": current["value"]})
    client.secrets.kv.v2.update_metadata(path=kv_path, custom_metadata={"keep": "yes", "pending_key_id": "stale"})
    env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token,
           "OPENROUTER_MANAGEMENT_KEY": admin, "OPENROUTER_BASE_URL": emulator.base_url("openrouter")}

    def create(name, record_in, **extra):
        args = {"provider": "openrouter", "name": name, "stage_in": {"path": kv_path + ".next"}, "record_in": record_in}
        args.update(extra)
        return task("create", "provider_key_create", args, register="made")

    def metadata():
        return client.secrets.kv.v2.read_secret_metadata(path=kv_path)["data"]["custom_metadata"]

    record = {"path": kv_path, "custom_metadata": {"stage": "creating", "rotation_id": "r1", "pending_key_id": None}}
    before = state_keys(emulator, "openrouter")
    checked = ansible.run_playbook(play([create("recorded", record)]), env=env, check=True)
    assert checked.rc == 0, checked
    assert metadata() == {"keep": "yes", "pending_key_id": "stale"}, "check mode writes nothing"
    assert state_keys(emulator, "openrouter") == before

    result = ansible.run_playbook(play([create("recorded", record)]), env=env, verbosity=3, diff=True)
    assert result.rc == 0, result
    made = result.result("create")["result"]
    [key] = [k for k in state_keys(emulator, "openrouter") if k["name"] == "recorded"]
    assert made["recorded_in"] == "secret/" + kv_path and made["key_id"] == key["id"]
    assert metadata() == {"keep": "yes", "stage": "creating", "rotation_id": "r1", "pending_key_id": key["id"],
                          "pending_fingerprint": key["fingerprint"]}
    # --diff shows the record as it was before the task and as the task left it
    assert made["diff"]["before"]["record"] == {"keep": "yes", "pending_key_id": "stale"}
    assert made["diff"]["after"]["record"] == metadata()
    assert '"pending_key_id": "%s"' % key["id"] in result.output or "pending_key_id: %s" % key["id"] in result.output
    staged = client.secrets.kv.v2.read_secret_version(path=kv_path + ".next", raise_on_deleted_version=True)
    assert fp_of(staged["data"]["data"]["api_key"]) == key["fingerprint"]
    assert_no_secret(result.output + json.dumps(result.events), staged["data"]["data"]["api_key"], admin, current["value"])

    # Vault refuses the record (a value it cannot store): nothing is made, nothing written, the option is named
    before, recorded = state_keys(emulator, "openrouter"), metadata()
    bad = {"path": kv_path, "custom_metadata": {"stage": ["creating"]}}
    refused = ansible.run_playbook(play([create("refused", bad)]), env=env)
    assert refused.rc != 0 and "record_in: custom_metadata.stage must be a string" in msg(refused.result("create")), refused
    no_stage = ansible.run_playbook(play([task("create", "provider_key_create", {
        "provider": "openrouter", "name": "refused", "record_in": record})]), env=env)
    assert no_stage.rc != 0 and "record_in needs stage_in" in msg(no_stage.result("create")), no_stage
    for run in (refused, no_stage):
        assert "Traceback" not in run.output
    assert state_keys(emulator, "openrouter") == before and metadata() == recorded


def test_probe_refuses_a_key_other_than_the_expected_one(ansible, emulator, openbao, kv_path):
    """api_key_from with expected_fingerprint: the key read must be the expected one, or nothing is probed."""
    import hvac  # pylint: disable=import-outside-toplevel

    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin = seed(emulator, "openrouter", "admin")["value"]
    first, second = seed(emulator, "openrouter", "api", name="first"), seed(emulator, "openrouter", "api", name="second")
    for key in (first, second):
        client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": key["value"]})
    env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token,
           "OPENROUTER_MANAGEMENT_KEY": admin, "OPENROUTER_BASE_URL": emulator.base_url("openrouter")}

    def probe(name, expected, **ref):
        return task(name, "api_key_probe", {"provider": "openrouter", "api_key_from": dict(ref, path=kv_path),
                                            "expected_fingerprint": expected}, ignore_errors=True)

    requests_before = len(hits(emulator)["requests"])
    result = ansible.run_playbook(play([
        probe("newest is expected", second["fingerprint"]),
        probe("newest is another", first["fingerprint"]),
        probe("pinned version", first["fingerprint"], version=1),
        task("with api_key", "api_key_probe", {"provider": "openrouter", "api_key": second["value"],
                                               "expected_fingerprint": second["fingerprint"]}, ignore_errors=True),
    ]), env=env, verbosity=3)
    assert result.rc == 0, result.stdout[-3000:]
    ok = result.result("newest is expected")["result"]
    assert ok["live"] is True and ok["api_key_version"] == 2 and ok["fingerprint"] == second["fingerprint"]
    assert result.result("newest is another")["event"] == "failed"
    refused = result.result("newest is another")["result"]
    assert refused["key_mismatch"] is True and refused["fingerprint"] == second["fingerprint"]
    assert refused["api_key_version"] == 2 and "Nothing was probed" in refused["msg"]
    assert result.result("pinned version")["result"]["live"] is True
    assert "expected_fingerprint goes with health_url or api_key_from" in msg(result.result("with api_key"))
    assert len(hits(emulator)["requests"]) - requests_before == 2, "one probe each for the two expected keys, none else"

    # the newest version deleted: no key where the expected one should be
    client.secrets.kv.v2.delete_latest_version_of_secret(path=kv_path)
    gone = ansible.run_playbook(play([probe("deleted", second["fingerprint"])]), env=env)
    deleted = gone.result("deleted")["result"]
    assert deleted["key_mismatch"] is True and deleted["fingerprint"] is None and "holds no key" in deleted["msg"]
    assert_no_secret(result.output + gone.output + json.dumps(result.events), first["value"], second["value"], admin)


def test_info_require_usable_names_what_is_wrong(ansible, emulator, openbao, kv_path):
    """require_usable: the key of key_id must exist, be usable and fit the key in Vault; a wrong base_url is named."""
    import hvac  # pylint: disable=import-outside-toplevel

    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin = seed(emulator, "openrouter", "admin")["value"]
    in_use, other = seed(emulator, "openrouter", "api", name="in-use"), seed(emulator, "openrouter", "api", name="other")
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": in_use["value"]})
    env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token,
           "OPENROUTER_MANAGEMENT_KEY": admin, "OPENROUTER_BASE_URL": emulator.base_url("openrouter")}

    def lookup(name, key_id, **extra):
        args = {"provider": "openrouter", "match_api_key_from": {"path": kv_path}, "require_usable": True}
        if key_id is not None:
            args["key_id"] = key_id
        args.update(extra)
        return task(name, "provider_key_info", args, ignore_errors=True)

    result = ansible.run_playbook(play([
        lookup("in use", in_use["id"]),
        lookup("another key", other["id"]),
        lookup("no such key", "f" * 64),
        lookup("wrong base_url", "f" * 64, base_url=emulator.base_url("openrouter") + "/nowhere"),
        lookup("no key_id", None),
    ]), env=env, verbosity=3)
    assert [result.result(name)["event"] for name in ("in use", "another key", "no such key", "wrong base_url", "no key_id")] \
        == ["ok", "failed", "failed", "failed", "failed"], result
    found = result.result("in use")["result"]
    assert "problem" not in found and found["matching_key_ids"] == [in_use["id"]], found
    mismatch = result.result("another key")["result"]
    assert mismatch["problem"] == "hint_mismatch", mismatch
    assert "does not fit the key in Vault (%s)" % in_use["fingerprint"] in mismatch["msg"], mismatch
    missing = result.result("no such key")["result"]
    assert missing["problem"] == "missing", missing
    assert missing["msg"] == "no openrouter key has that id (%s)" % ("f" * 64), missing
    wrong = result.result("wrong base_url")["result"]
    assert "problem" not in wrong and "does not lead to OpenRouter's API" in wrong["msg"], wrong
    assert "require_usable needs key_id" in msg(result.result("no key_id")), result
    assert "Traceback" not in result.output
    assert_no_secret(result.output + json.dumps(result.events), in_use["value"], other["value"], admin)
    # nothing was changed at the provider
    statuses = {k["id"]: k["status"] for k in state_keys(emulator, "openrouter")}
    assert statuses == {in_use["id"]: "active", other["id"]: "active"}
