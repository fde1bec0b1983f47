# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults from outside: the providers and Vault fail while ``apikeys.rotation.rotate`` runs.

Every case is a real ansible-playbook rotation against OpenBao and the provider emulator,
with a fault injected at a chosen endpoint or stage. The outcome is checked out of band
(Vault with plain hvac, the provider side through the emulator's control API), and is
always one of two:

* the rotation completes: Vault's newest version holds the only active key, which
  authenticates, and the old key is retired;
* the rotation stops with a clear message and nothing lost: the key Vault serves is
  active and authenticates, the old key was not revoked unless a proven new key was
  already served, every key the run made is in Vault, revoked, or named by the record
  so the next run can revoke it. A re-run after recovery then finishes the rotation.

The provider matrix is built from ENDPOINTS, the endpoints a clean rotation uses per
provider (checked against the emulator's hit counters in every transient case).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

import hvac
import pytest

from harness import BIN_DIR, OpenBaoRaft, http_json, kill_hung, wait_for
from test_rotation import HOST, ROTATE, Setup, fp

PROVIDERS = ("anthropic", "openai", "openrouter")

# The endpoints one rotation uses, per provider: name -> (method, path regex below the provider
# base, route template as the emulator counts it). OpenAI retires with state=deleted here, so
# its revoke endpoints are part of the rotation too.
ENDPOINTS: t.Dict[str, t.Dict[str, t.Tuple[str, str, str]]] = {
    "anthropic": {
        "list": ("GET", r"^/v1/organizations/api_keys$", "/v1/organizations/api_keys"),
        "update": ("POST", r"^/v1/organizations/api_keys/[^/]+$", "/v1/organizations/api_keys/{id}"),
        "probe": ("GET", r"^/v1/models$", "/v1/models"),
        "get": ("GET", r"^/v1/organizations/api_keys/[^/]+$", "/v1/organizations/api_keys/{id}"),
    },
    "openai": {
        "list": ("GET", r"^/organization/projects/[^/]+/api_keys$", "/organization/projects/{project_id}/api_keys"),
        # each key on a service account of its own: create makes the account, revoke deletes it
        "create": ("POST", r"^/organization/projects/[^/]+/service_accounts$",
                   "/organization/projects/{project_id}/service_accounts"),
        "probe": ("GET", r"^/models$", "/models"),
        "get": ("GET", r"^/organization/projects/[^/]+/api_keys/[^/]+$", "/organization/projects/{project_id}/api_keys/{key_id}"),
        "delete": ("DELETE", r"^/organization/projects/[^/]+/service_accounts/[^/]+$",
                   "/organization/projects/{project_id}/service_accounts/{service_account_id}"),
    },
    "openrouter": {
        "list": ("GET", r"^/keys$", "/keys"),
        "create": ("POST", r"^/keys/?$", "/keys"),
        "probe": ("GET", r"^/key$", "/key"),
        "get": ("GET", r"^/keys/[^/]+$", "/keys/{hash}"),
        "patch": ("PATCH", r"^/keys/[^/]+$", "/keys/{hash}"),
    },
}
# Where the rotation first calls each endpoint.
STAGE_OF = {"list": "plan", "update": "create", "create": "create", "probe": "pre-verify", "get": "retire",
            "delete": "retire", "patch": "retire"}
# The provider modules' timeout in these plays (module_defaults), so that a timeout costs 2 s, not 30.
PROVIDER_TIMEOUT = 2.0


def fault_sequence(provider: str, method: str) -> t.List[t.Tuple[str, dict]]:
    """The faults one endpoint meets in a row on its first call, oldest first.

    The client's 3 retries absorb them. A POST is never sent again once it may have been
    applied, so it meets no timeout here (see test_timeout_on_a_create); a PATCH or DELETE
    that the provider applies, answering too late, is repeated safely.
    """
    sequence = [("429", {"status": 429, "retry_after": 1}), ("5xx", {"status": 529 if provider == "anthropic" else 500})]
    if method == "GET":
        sequence.append(("timeout", {"hang": PROVIDER_TIMEOUT + 1}))
    elif method in ("PATCH", "DELETE"):
        sequence.append(("late", {"latency": PROVIDER_TIMEOUT + 1}))
    sequence.append(("slow", {"latency": PROVIDER_TIMEOUT / 10}))
    return sequence


# A create that times out. "hang": the provider never answers (nothing made); "late": it
# makes the key, then answers after the client gave up (a key the run never saw).
CREATE_CASES = [("anthropic", "update", "late"), ("openai", "create", "late"), ("openrouter", "create", "late"),
                ("openrouter", "create", "hang")]
# An outage longer than the client's retries (4 attempts) at each stage, per provider.
OUTAGE = {"status": 500, "count": 5}
OUTAGE_CASES = [("anthropic", "list"), ("anthropic", "update"), ("anthropic", "get"),
                ("openai", "list"), ("openai", "create"), ("openai", "delete"),
                ("openrouter", "list"), ("openrouter", "create"), ("openrouter", "probe"), ("openrouter", "patch")]

FAST_VARS = {"rotate_probe_delay": 0.2, "rotate_probe_retries": 10, "rotate_verify_successes": 1}
PROVIDER_VARS = {"openai": {"rotate_retire_state": "deleted"}}
RETIRED = {"anthropic": "inactive", "openai": "deleted", "openrouter": "disabled"}


# -- running a rotation with faults -------------------------------------------------


class Outcome:
    def __init__(self, rc: int, output: str, events: t.List[dict], seconds: float) -> None:
        self.rc = rc
        self.output = output
        self.events = events
        self.seconds = seconds

    def __repr__(self) -> str:
        return "Outcome(rc=%d, %.1fs)\n%s" % (self.rc, self.seconds, self.output[-5000:])


Trigger = t.Tuple[str, t.Callable[[], None]]


def timeout_play() -> t.List[dict]:
    """The rotate playbook with a short provider timeout, set the documented way (module_defaults)."""
    return [{"name": "Rotate API keys", "hosts": "all", "gather_facts": False, "connection": "local",
             "module_defaults": {"group/apikeys.rotation.provider": {"timeout": PROVIDER_TIMEOUT}},
             "roles": [{"role": "apikeys.rotation.rotate"}]}]


def rotate(ansible, s: Setup, extra: t.Optional[dict] = None, trigger: t.Optional[Trigger] = None,
           plays: t.Optional[t.List[dict]] = None, env: t.Optional[dict] = None, timeout: float = 240,
           verbosity: int = 0) -> Outcome:
    """Run one rotation; a trigger's action runs once, while the run is held at the start of the task it names.

    The kill_at callback holds ansible-playbook as that task starts, before any worker is forked
    for it, until the action has run: the task and everything after it meet the fault, nothing
    before it does, whatever the machine's load. A trigger names a task that does not touch the
    Vault path of the key (see WINDOWS), so the next request of the run to that path is the first
    to meet the fault.
    """
    run_dir = tempfile.mkdtemp(prefix="fault-", dir=ansible.workdir)
    hostvars = dict(FAST_VARS, **PROVIDER_VARS.get(s.provider, {}))
    hostvars.update(extra or {})
    paths = {}
    for name, content in (("inventory.json", s.inventory(**hostvars)), ("vars.json", {"rotate_force": True}),
                          ("playbook.yml", plays)):
        paths[name] = os.path.join(run_dir, name)
        with open(paths[name], "w", encoding="utf-8") as handle:
            json.dump(content, handle)
    events_path = os.path.join(run_dir, "events.jsonl")
    run_env = ansible.env(dict(s.env, **(env or {})))
    run_env.update(ANSIBLE_PIPELINING="1", PYTHONUNBUFFERED="1", APIKEYS_TEST_EVENTS=events_path)
    go = os.path.join(run_dir, "go")
    if trigger:
        run_env.update(ANSIBLE_CALLBACKS_ENABLED="record_results,kill_at", APIKEYS_PAUSE_AT="name:" + trigger[0],
                       APIKEYS_PAUSE_UNTIL=go)
    playbook = paths["playbook.yml"] if plays else ROTATE
    started = time.monotonic()
    cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook, "-i", paths["inventory.json"], "-e", "@" + paths["vars.json"]]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    proc = subprocess.Popen(cmd, cwd=run_dir, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    watchdog = threading.Timer(timeout, kill_hung, args=(proc.pid, timeout))
    watchdog.start()
    pending = trigger
    lines: t.List[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if pending and line.startswith("TASK [") and pending[0] in line:
                # The run is held by the callback from here until the flag exists.
                try:
                    pending[1]()
                finally:
                    pending = None
                    with open(go, "w", encoding="utf-8") as handle:
                        handle.write("go")
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = "".join(lines)
    with open(os.path.join(run_dir, "output.txt"), "w", encoding="utf-8") as handle:
        handle.write(output)
    sys.stdout.write("ansible-playbook rc=%s in %.1fs, output in %s\n" % (proc.returncode, time.monotonic() - started, run_dir))
    assert not pending, "the fault was never injected: no task %r ran\n%s" % (pending[0], output[-4000:])
    events = []
    if os.path.exists(events_path):
        with open(events_path, encoding="utf-8") as handle:
            events = [json.loads(line) for line in handle if line.strip()]
    return Outcome(proc.returncode, output, events, time.monotonic() - started)


def rerun(ansible, s: Setup, extra: t.Optional[dict] = None, env: t.Optional[dict] = None) -> Outcome:
    """Run the rotation again after recovery, as an operator would.

    A run that failed because Vault went away could not release its lease either: when the
    re-run is refused for that, the operator follows the message and breaks that lease.
    """
    outcome = rotate(ansible, s, extra=extra, env=env)
    found = re.search(r"rotate_lease_break=([\w.-]+?)\.?\s", outcome.output)
    if outcome.rc != 0 and "rotation in progress in another run" in outcome.output and found:
        outcome = rotate(ansible, s, extra=dict(extra or {}, rotate_lease_break=found.group(1)), env=env)
    return outcome


def add_fault(s: Setup, endpoint: str, spec: dict) -> None:
    method, path, _route = ENDPOINTS[s.provider][endpoint]
    s.emulator.control("POST", "faults", dict({"provider": s.provider, "method": method, "path": path, "count": 1}, **spec))


def statuses(s: Setup) -> t.Dict[str, t.List[t.Optional[int]]]:
    """Statuses the provider answered, per 'METHOD route'."""
    found: t.Dict[str, t.List[t.Optional[int]]] = {}
    for request in s.emulator.control("GET", "hits")["requests"]:
        if request["provider"] == s.provider:
            found.setdefault("%s %s" % (request["method"], request["route"]), []).append(request["status"])
    return found


def endpoint_key(s: Setup, endpoint: str) -> str:
    method, _path, route = ENDPOINTS[s.provider][endpoint]
    return "%s %s" % (method, route)


# -- out-of-band checks -------------------------------------------------------------


def vault_values(s: Setup) -> t.List[str]:
    values = []
    for version in range(1, s.metadata()["current_version"] + 1):
        try:
            values.append(s.value(version))
        except hvac.exceptions.InvalidPath:
            continue
    return values


def assert_safe(s: Setup, before: t.Set[str]) -> None:
    """Whatever happened, nothing is lost and the key Vault serves works."""
    s.emulator.control("DELETE", "faults")
    served = s.value()
    served_keys = [k for k in s.keys() if k["fingerprint"] == fp(served)]
    assert len(served_keys) == 1 and served_keys[0]["status"] == "active", "Vault serves a key that is not active: %s" % served_keys
    assert s.authenticates(served), "the key Vault serves does not authenticate"
    assert s.value(1) == s.old["value"], "Vault's history lost the old key"
    record = s.record()
    if s.key(s.old["id"])["status"] != "active":
        # The old key may only be retired once a proven new key is what Vault serves.
        assert served != s.old["value"] and record.get("stage") in (None, "verified"), record
    in_vault = {fp(value) for value in vault_values(s)}
    # OpenAI names a new service account's first key "Secret Key": the rotation's name is the account's
    accounts = {a["id"]: a["name"] for a in s.emulator.control("GET", "state")["openai"]["service_accounts"]}
    for key in s.keys():
        if key["id"] in before or key["status"] != "active" or key["fingerprint"] in in_vault:
            continue
        # A key the run made but never stored: the record names it, so the next run revokes it.
        names = {key["name"], accounts.get(key.get("service_account_id"))}
        named = key["id"] == record.get("pending_key_id") or "%s-%s" % (HOST, record.get("rotation_id")) in names
        assert named and record.get("stage") == "creating", "an active key nobody will revoke: %s, record %s" % (key, record)


def assert_finished(s: Setup, outcome: Outcome) -> str:
    """The rotation completed: one active key, Vault's newest, which works; the old key retired."""
    assert outcome.rc == 0, outcome
    s.emulator.control("DELETE", "faults")
    newest = s.value()
    assert newest != s.old["value"]
    active = [k for k in s.keys() if k["status"] == "active"]
    assert [k["fingerprint"] for k in active] == [fp(newest)], "active keys besides Vault's newest: %s" % active
    assert s.authenticates(newest)
    assert s.key(s.old["id"])["status"] == RETIRED[s.provider]
    assert s.value(1) == s.old["value"]
    assert "stage" not in s.record()
    return newest


def new_setup(provider: str, vault, emulator, kv_path: str) -> t.Tuple[Setup, t.Set[str]]:
    s = Setup(provider, vault, emulator, kv_path)
    emulator.control("DELETE", "hits")
    return s, {k["id"] for k in s.keys()}


def test_fault_matrix():
    """Every endpoint meets every fault kind that applies to it; every stage meets an outage, per provider."""
    per_kind: t.Dict[str, int] = {}
    for provider in PROVIDERS:
        for method, _path, _route in ENDPOINTS[provider].values():
            for kind, _spec in fault_sequence(provider, method):
                per_kind[kind] = per_kind.get(kind, 0) + 1
    for _provider, _endpoint, kind in CREATE_CASES:
        per_kind["create " + kind] = per_kind.get("create " + kind, 0) + 1
    per_kind["outage"] = len(OUTAGE_CASES)
    per_kind["propagation"] = len(PROVIDERS) + 1
    cases = len(PROVIDERS) + len(CREATE_CASES) + len(OUTAGE_CASES) + len(PROVIDERS) + 1
    sys.stdout.write("\nprovider faults injected by kind: %s in %d cases\n" % (per_kind, cases))
    for provider in PROVIDERS:
        stages = {STAGE_OF[e] for p, e in OUTAGE_CASES if p == provider}
        assert stages >= {"plan", "create", "retire"}, provider
        posts = {e for e, spec in ENDPOINTS[provider].items() if spec[0] == "POST"}
        assert posts <= {e for p, e, k in CREATE_CASES if p == provider and k == "late"}, "every create meets a timeout"
        for method, _path, _route in ENDPOINTS[provider].values():
            kinds = [kind for kind, _spec in fault_sequence(provider, method)]
            assert len(kinds) <= 4, "more faults in a row than the client retries"
            assert {"429", "5xx", "slow"} <= set(kinds) and (method == "POST" or {"timeout", "late"} & set(kinds))
    assert cases <= 25, "keep the matrix affordable"


# -- provider faults ----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_faults_on_every_endpoint(provider, openbao, emulator, kv_path, ansible):
    """Each endpoint the rotation uses meets 429 + Retry-After, a 5xx, a timeout and a slow answer in a row: the rotation completes."""
    s, before = new_setup(provider, openbao, emulator, kv_path)
    for name, (method, _path, _route) in ENDPOINTS[provider].items():
        for _kind, spec in fault_sequence(provider, method):
            add_fault(s, name, spec)
    outcome = rotate(ansible, s, plays=timeout_play())
    seen = statuses(s)
    assert outcome.rc == 0, outcome
    assert s.emulator.control("GET", "faults")["faults"] == [], "a fault was never reached: %s" % seen
    # The endpoints of a clean rotation are exactly the table's (the matrix is derived from it).
    expected = {endpoint_key(s, e) for e in ENDPOINTS[provider]}
    assert set(seen) == expected, "the rotation's endpoints changed: %s" % sorted(set(seen) ^ expected)
    for name, (method, _path, _route) in ENDPOINTS[provider].items():
        answered = seen[endpoint_key(s, name)]
        assert 429 in answered and (529 if provider == "anthropic" else 500) in answered, (name, answered)
        assert method != "GET" or None in answered, "%s met no timeout: %s" % (name, answered)
    assert_safe(s, before)
    assert_finished(s, outcome)


@pytest.mark.parametrize("provider,endpoint,kind", CREATE_CASES, ids=["%s-%s-%s" % case for case in CREATE_CASES])
def test_timeout_on_a_create(provider, endpoint, kind, openbao, emulator, kv_path, ansible):
    """A create (Anthropic: the adoption of the Console key) that times out is not sent twice: the run stops, the re-run finishes."""
    s, before = new_setup(provider, openbao, emulator, kv_path)
    add_fault(s, endpoint, {"hang" if kind == "hang" else "latency": PROVIDER_TIMEOUT + 1})
    outcome = rotate(ansible, s, plays=timeout_play())
    if kind == "late":
        # The run can end before the provider has finished the request it gave up on: wait for
        # the late answer (its status reaches the emulator's log even though nobody reads it).
        wait_for(lambda: statuses(s)[endpoint_key(s, endpoint)][-1] is not None, 30, "the late %s to finish" % endpoint)
    answered = statuses(s)[endpoint_key(s, endpoint)]
    assert len(answered) == 1 and (answered[0] is None if kind == "hang" else answered[0] in (200, 201)), \
        "sent once: %s" % answered
    assert outcome.rc != 0, outcome
    assert "ReadTimeout" in outcome.output, outcome
    assert_safe(s, before)
    assert s.value() == s.old["value"] and s.key(s.old["id"])["status"] == "active"
    assert s.record().get("stage") == "creating", "the record keeps the rotation to resume"
    made = [k for k in s.keys() if k["id"] not in before]
    assert len(made) == (1 if kind == "late" and provider != "anthropic" else 0), made
    again = rotate(ansible, s)
    assert_finished(s, again)
    for key in made:
        assert s.key(key["id"])["status"] == "deleted", "the key the provider made too late was revoked"


@pytest.mark.parametrize("provider,endpoint", OUTAGE_CASES, ids=["%s-%s" % case for case in OUTAGE_CASES])
def test_outage_longer_than_the_retries(provider, endpoint, openbao, emulator, kv_path, ansible):
    """5 x 500 on one endpoint: the module gives up (a probe is repeated), the run stops safely, a re-run finishes."""
    s, before = new_setup(provider, openbao, emulator, kv_path)
    add_fault(s, endpoint, OUTAGE)
    outcome = rotate(ansible, s)
    assert statuses(s)[endpoint_key(s, endpoint)][:4] == [500] * 4
    assert_safe(s, before)
    if endpoint == "probe":
        # Probes report live=false and are repeated; the outage ends within the probe budget.
        assert_finished(s, outcome)
        return
    assert outcome.rc != 0, outcome
    assert "%s: " % provider in outcome.output and "failed: HTTP 500" in outcome.output, outcome
    record = s.record()
    if STAGE_OF[endpoint] == "plan":
        assert s.metadata()["current_version"] == 1 and record == {}, "nothing changed before the failure"
    if STAGE_OF[endpoint] == "retire":
        assert record.get("stage") == "verified" and s.key(s.old["id"])["status"] == "active"
    else:
        assert s.value() == s.old["value"] and s.key(s.old["id"])["status"] == "active"
    again = rotate(ansible, s)
    assert_finished(s, again)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_propagation_delays(provider, openbao, emulator, kv_path, ansible):
    """A new key refused by several probes before it propagates, an old key that works on after its revoke."""
    # Propagation counted in refused authentications (new_key_refusals), not seconds: however
    # slow the machine, the first probes of the new key fail. Anthropic's new key is made in
    # the Console before the run: it is staged again once the setting is on.
    s, before = new_setup(provider, openbao, emulator, kv_path)
    refusals = 4
    emulator.control("POST", "propagation", {"provider": provider, "new_key_refusals": refusals, "revoke_delay": 60})
    if provider == "anthropic":
        s.restage_console_key()
    outcome = rotate(ansible, s, extra={"rotate_probe_retries": 3 * refusals})
    preverify = [e for e in outcome.events if e["task"].endswith("Pre-verify | probe the new key at the provider until it authenticates")]
    assert preverify and preverify[-1]["result"]["attempts"] > 1, "the first probes met the propagation delay"
    new_value = assert_finished(s, outcome)
    # The old key is revoked yet still accepted (revoke_delay): the role did not depend on it stopping.
    old = s.key(s.old["id"])
    assert old["authenticates"] is True and old["status"] == RETIRED[provider]
    assert s.authenticates(new_value)
    assert_safe(s, before)


def test_new_key_valid_only_after_the_probe_budget(openbao, emulator, kv_path, ansible):
    """A propagation delay longer than every probe: the new key is revoked, Vault and the old key untouched."""
    s, before = new_setup("openrouter", openbao, emulator, kv_path)
    s.emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_delay": 600, "revoke_delay": 0})
    outcome = rotate(ansible, s, extra={"rotate_probe_retries": 3})
    assert outcome.rc != 0 and "did not authenticate" in outcome.output and "was not touched" in outcome.output, outcome
    assert_safe(s, before)
    assert s.metadata()["current_version"] == 1 and s.key(s.old["id"])["status"] == "active"
    assert [k["status"] for k in s.keys() if k["id"] not in before] == ["deleted"]
    s.emulator.control("POST", "propagation", {"provider": "openrouter", "new_key_delay": 0})
    assert_finished(s, rotate(ansible, s))


# -- Vault faults -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_raft(tmp_path_factory):
    """One persistent OpenBao per module (starting one costs several seconds); each test leaves it unsealed."""
    server = OpenBaoRaft(str(tmp_path_factory.mktemp("raft-faults")))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def vault_health(server) -> t.Optional[int]:
    try:
        return http_json("GET", server.addr + "/v1/sys/health", timeout=10)[0]
    except OSError:
        return None


def bring_back(server) -> None:
    """Running and unsealed again, whatever the test did to it."""
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    deadline = time.monotonic() + 60
    while vault_health(server) not in (200, 503) and time.monotonic() < deadline:
        time.sleep(0.2)
    if vault_health(server) == 503:
        server.unseal()
    assert vault_health(server) == 200, "OpenBao did not come back"


@pytest.fixture()
def raft(shared_raft):
    bring_back(shared_raft)
    yield shared_raft
    bring_back(shared_raft)


# A window at a stage: the run is held as this task starts while the test breaks Vault. None of
# these tasks touches the key's Vault path (the pre-verify reads the staged key at <path>.next),
# so the next request of the run to it is the first to meet the fault.
WINDOWS = {
    "lease": "Plan | list the provider's keys",                                 # next: taking the lease
    "store": "Pre-verify | probe the new key at the provider until it authenticates",  # next: storing the key
    "verify": "Test hook | consumers reload",                                   # next: reading the key back
    "done": "Retire | revoke the previous key",                                 # next: closing the record
}
HOOK = [{"name": "Test hook | consumers reload", "ansible.builtin.debug": {"msg": "consumers reloaded"}}]


def window(ansible, stage: str, action: t.Callable[[], None]) -> t.Tuple[Trigger, dict]:
    hook = os.path.join(ansible.workdir, "hook.yml")
    with open(hook, "w", encoding="utf-8") as handle:
        json.dump(HOOK, handle)
    return (WINDOWS[stage], action), {"deploy_tasks": hook}


def expect_stopped_at(s: Setup, stage: str) -> None:
    """Where the record must stand after a Vault failure at ``stage``."""
    record = s.record()
    if stage in ("plan", "lease", "create"):
        assert s.metadata()["current_version"] == 1 and record.get("stage") in (None, "creating")
        assert [k["id"] for k in s.active()] == [s.old["id"]], "nothing was made at the provider"
    elif stage == "store":
        assert s.metadata()["current_version"] == 1 and record.get("stage") == "creating" and record.get("pending_key_id")
    elif stage == "verify":
        assert record.get("stage") == "stored" and s.key(s.old["id"])["status"] == "active"
    elif stage == "done":
        assert record.get("stage") == "verified"


VAULT_DOWN_CASES = [("sealed", "plan"), ("sealed", "store"), ("sealed", "verify"), ("sealed", "done"),
                    ("unreachable", "lease"), ("unreachable", "done")]


@pytest.mark.parametrize("fault,stage", VAULT_DOWN_CASES, ids=["%s-%s" % case for case in VAULT_DOWN_CASES])
def test_vault_down_at_a_stage(fault, stage, raft, emulator, kv_path, ansible):
    """Vault sealed or stopped at one stage: a clear error, nothing lost, a re-run after recovery finishes."""
    s, before = new_setup("openrouter", raft, emulator, kv_path)
    action = raft.seal if fault == "sealed" else raft.stop
    if stage == "plan":
        action()
        trigger: t.Optional[Trigger] = None
        extra: dict = {}
    else:
        trigger, extra = window(ansible, stage, action)
    outcome = rotate(ansible, s, extra=extra, trigger=trigger)
    assert outcome.rc != 0, outcome
    if fault == "sealed":
        assert "is sealed" in outcome.output and "Unseal it" in outcome.output, outcome
    else:
        assert "Cannot reach the Vault server" in outcome.output and "connection refused" in outcome.output, outcome
    if stage == "verify":
        # the stage, what is served now, and the recovery with the lease
        assert "Vault became unavailable during verify" in outcome.output, outcome
        assert "Nothing was restored, revoked or recorded" in outcome.output and "stage=stored" in outcome.output
        assert "-e rotate_lease_break=" in outcome.output and "Unknown error" not in outcome.output
        assert "Superseded" not in outcome.output, "a Vault outage is not another writer"
    bring_back(raft)
    assert_safe(s, before)
    expect_stopped_at(s, stage)
    pending = s.record().get("pending_key_id")
    again = rerun(ansible, s, extra=extra)
    assert_finished(s, again)
    if pending:
        assert s.key(pending)["status"] == "deleted", "the key made before the failure was revoked"


def test_rerun_after_a_vault_outage_and_the_lease_it_left(raft, emulator, kv_path, ansible):
    """A run that fails because Vault went away cannot release its lease (by design: nothing can be written).

    Had that run been on another controller (an AWX job's container), nothing here proves it is
    gone: the re-run right after recovery is refused with the lease's owner, its expiry and the
    way to break it, and changes nothing. On this controller, its process gone, the re-run takes
    the lease over at once and finishes the rotation, with no lease broken by hand and no wait
    for the lease to expire.
    """
    s, before = new_setup("openrouter", raft, emulator, kv_path)
    trigger, extra = window(ansible, "store", raft.seal)
    extra["rotate_lease_ttl"] = "1h"
    assert rotate(ansible, s, extra=extra, trigger=trigger).rc != 0
    bring_back(raft)
    client = hvac.Client(url=raft.addr, token=raft.root_token)
    lease = client.secrets.kv.v2.read_secret_version(
        path=kv_path + ".lock", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert lease["state"] == "held" and float(lease["expires_epoch"]) > time.time() + 3000, lease
    elsewhere = dict(lease, controller="awx-job-412-container")
    client.secrets.kv.v2.create_or_update_secret(path=kv_path + ".lock", secret=elsewhere, mount_point="secret")
    state = (s.metadata()["current_version"], s.record(), sorted((k["id"], k["status"]) for k in s.keys()))
    refused = rotate(ansible, s, extra=extra)
    assert refused.rc != 0 and "rotation in progress in another run" in refused.output, refused
    assert "rotate_lease_break=%s" % lease["owner"] in refused.output and lease["expires_at"] in refused.output, refused
    assert state == (s.metadata()["current_version"], s.record(), sorted((k["id"], k["status"]) for k in s.keys()))
    # The lease as the failed run left it here: its holder's process is gone.
    client.secrets.kv.v2.create_or_update_secret(path=kv_path + ".lock", secret=lease, mount_point="secret")
    outcome = rotate(ansible, s, extra=extra)
    assert_finished(s, outcome)
    assert_safe(s, before)
    assert "taken_over_from" in outcome.output and lease["owner"] in outcome.output, outcome
    assert '"taken_over_because": "dead_holder"' in outcome.output, outcome


def write_policy(client: hvac.Client, name: str, kv_path: str, data: t.Sequence[str], metadata: t.Sequence[str]) -> None:
    """The key's secret gets the given capabilities; anything beside it (the lease, <path>.lock) all it needs."""
    rules = ['path "secret/data/%s" { capabilities = %s }' % (kv_path, json.dumps(list(data) or ["deny"])),
             'path "secret/metadata/%s" { capabilities = %s }' % (kv_path, json.dumps(list(metadata) or ["deny"])),
             'path "secret/data/%s.*" { capabilities = %s }' % (kv_path, json.dumps(list(FULL[0]))),
             'path "secret/metadata/%s.*" { capabilities = %s }' % (kv_path, json.dumps(list(FULL[1])))]
    client.sys.create_or_update_policy(name=name, policy="\n".join(rules))


FULL = (("create", "read", "update"), ("create", "read", "update", "list"))
DENIED_CASES = {
    # stage -> (data capabilities, metadata capabilities) from the start; "done" loses them mid-run
    "plan": ((), ()),
    "create": (("read",), ("read", "list")),
    "store": (("read",), ("create", "read", "update", "list")),
    "done": FULL,
}


@pytest.mark.parametrize("stage", sorted(DENIED_CASES))
def test_vault_permission_denied_at_a_stage(stage, openbao, emulator, kv_path, ansible):
    """A token whose policy lacks one capability (or loses it mid-run): a clear error, then the fixed policy finishes."""
    s, before = new_setup("openrouter", openbao, emulator, kv_path)
    root = hvac.Client(url=openbao.addr, token=openbao.root_token)
    policy = "rotation-%s" % kv_path.replace("/", "-")
    write_policy(root, policy, kv_path, *DENIED_CASES[stage])
    token = root.auth.token.create(policies=[policy], ttl="1h")["auth"]["client_token"]
    trigger: t.Optional[Trigger] = None
    extra: dict = {}
    if stage == "done":
        trigger, extra = window(ansible, "done", lambda: write_policy(root, policy, kv_path, ("read",), ("read", "list")))
    outcome = rotate(ansible, s, extra=extra, trigger=trigger, env={"VAULT_TOKEN": token})
    assert outcome.rc != 0, outcome
    assert "Permission denied: could not" in outcome.output and "capability on the path" in outcome.output, outcome
    assert_safe(s, before)
    expect_stopped_at(s, stage)
    pending = s.record().get("pending_key_id")
    write_policy(root, policy, kv_path, *FULL)
    assert_finished(s, rerun(ansible, s, extra=extra, env={"VAULT_TOKEN": token}))
    if pending:
        assert s.key(pending)["status"] == "deleted"


def someone_rotates_by_hand(s: Setup, made: t.Dict[str, dict]) -> t.Callable[[], None]:
    """Out of band: a person makes a key at the provider and writes it to Vault."""
    def act() -> None:
        made["theirs"] = s.emulator.control("POST", "keys", {"provider": s.provider, "kind": "api", "name": "rotated-by-hand"})
        s.write_secret(made["theirs"]["value"])
    return act


@pytest.mark.parametrize("stage", ["lease", "store", "verify", "done"])
def test_vault_written_by_someone_else_at_a_stage(stage, openbao, emulator, kv_path, ansible):
    """Someone writes a new key to Vault mid-run: stop clearly, revoke only this run's key, never overwrite theirs.

    The next run then adopts their key and rotates it, leaving one active key.
    """
    s, before = new_setup("openrouter", openbao, emulator, kv_path)
    made: t.Dict[str, dict] = {}
    trigger, extra = window(ansible, stage, someone_rotates_by_hand(s, made))
    outcome = rotate(ansible, s, extra=extra, trigger=trigger)
    theirs = made["theirs"]
    assert s.value() == theirs["value"], "their version is the newest"
    assert_safe(s, before | {theirs["id"]})
    assert s.key(theirs["id"])["status"] == "active"
    assert outcome.rc != 0, outcome
    assert re.search(r"someone else|another run or person|Check-and-set conflict", outcome.output), outcome
    if stage in ("lease", "store"):
        assert s.key(s.old["id"])["status"] == "active", "nothing of theirs or the old key was revoked"
        assert [k["status"] for k in s.keys() if k["id"] not in before | {theirs["id"]}] in ([], ["deleted"])
    else:
        # This run's key was stored, then overwritten: it is kept active (a consumer may hold
        # it) and named in stale_key_ids, and the record forgets the rotation.
        assert "after this rotation stored its key" in outcome.output, outcome
        record = s.record()
        ours = [k for k in s.keys() if k["id"] not in before | {theirs["id"]}]
        assert len(ours) == 1 and ours[0]["status"] == "active", ours
        assert ours[0]["id"] in record.get("stale_key_ids", "").split(","), record
        assert not {"stage", "key_id", "previous_key_id", "previous_version"} & set(record), record
    for dummy in range(2):
        again = rotate(ansible, s, extra=extra)
        assert s.value() != s.old["value"], "a re-run wrote the old key over the version someone else wrote"
        if again.rc == 0:
            break
    assert again.rc == 0, again
    assert s.key(theirs["id"])["status"] == "disabled" and s.record()["previous_key_id"] == theirs["id"]
    # Every key this role made is now in Vault or revoked (the old key is not the role's to
    # revoke: someone else replaced it).
    left = [k for k in s.keys() if k["status"] == "active" and k["name"].startswith(HOST + "-") and k["fingerprint"] != fp(s.value())]
    assert left == [], "keys this role made left active, in no record: %s" % left
