# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys under rotation for the reliability tests (crash, concurrency), checked out of band.

A ``World`` is one key: its Vault secret, its keys at the provider (emulator), its inventory
host. Many worlds share one OpenBao and one emulator (distinct paths, names and, for OpenAI,
projects), so one ansible-playbook run can rotate many keys. Every check reads Vault with
plain hvac and the provider side from the emulator's state, never through the collection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import typing as t

import hvac

from harness import BIN_DIR, key_authenticates, kill_hung

PROVIDERS = ("anthropic", "openai", "openrouter")
ROTATE = "apikeys.rotation.rotate"
ADMIN_ENV = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY", "openrouter": "OPENROUTER_MANAGEMENT_KEY"}
BASE_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL", "openrouter": "OPENROUTER_BASE_URL"}
# Probes 0.2 s apart, two consecutive successes: a rotation in seconds.
# The tests read Vault themselves: no application holds these keys.
FAST = {"rotate_probe_delay": 0.2, "rotate_probe_retries": 8, "rotate_verify_successes": 2, "allow_without_deploy": True}
# The state of the previous key once a rotation is finished (OpenAI cannot disable a key).
RETIRED = {"anthropic": "inactive", "openai": "active", "openrouter": "disabled"}
GONE = ("deleted", "archived")
LONG_AGO = "2020-01-01T00:00:00Z"


def fp(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class Services:
    """The shared Vault and emulator, one admin key per provider, and the environment of every run."""

    def __init__(self, openbao: t.Any, emulator: t.Any) -> None:
        self.vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
        self.emulator = emulator
        self.admin = {p: emulator.control("POST", "keys", {"provider": p, "kind": "admin"})["value"] for p in PROVIDERS}
        self.env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token}
        for provider in PROVIDERS:
            self.env[ADMIN_ENV[provider]] = self.admin[provider]
            self.env[BASE_ENV[provider]] = emulator.base_url(provider)

    def state(self) -> dict:
        return self.emulator.control("GET", "state")


class World:
    """One key under rotation: the secret at ``<prefix>/<host>``, a provider key in use, a due record."""

    def __init__(self, services: Services, provider: str, host: str, prefix: str, **hostvars: t.Any) -> None:
        self.services = services
        self.provider = provider
        self.host = host
        self.path = "%s/%s" % (prefix, host)
        self.lock_path = self.path + ".lock"
        emulator = services.emulator
        self.project: t.Optional[str] = None
        body: t.Dict[str, t.Any] = {"provider": provider, "kind": "api", "name": "initial-" + host}
        if provider == "openai":
            self.project = emulator.control("POST", "openai/projects", {"name": host})["id"]
            body["project_id"] = self.project
        self.old = emulator.control("POST", "keys", body)
        self.hostvars: t.Dict[str, t.Any] = dict(FAST, provider=provider, vault_path=self.path)
        if provider == "openai":
            self.hostvars.update(openai_project_id=self.project)
        self.console: t.Optional[dict] = None
        if provider == "anthropic":
            # Anthropic cannot create keys by API: the Console-made key is staged in Vault.
            self.console = emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "console-" + host})
            self.kv.create_or_update_secret(path=self.path + "-next", secret={"api_key": self.console["value"]}, mount_point="secret")
            self.hostvars["new_api_key_vault_path"] = self.path + "-next"
        self.hostvars.update(hostvars)
        self.kv.create_or_update_secret(path=self.path, secret={"api_key": self.old["value"]}, mount_point="secret")
        # A key rotated long ago: due, with a record naming it (a scheduled run rotates it).
        self.kv.update_metadata(path=self.path, mount_point="secret", custom_metadata={
            "provider": provider, "key_id": self.old["id"], "fingerprint": fp(self.old["value"]), "rotated_at": LONG_AGO})

    @property
    def kv(self) -> t.Any:
        return self.services.vault.secrets.kv.v2

    # -- out-of-band reads -------------------------------------------------------

    def metadata(self) -> dict:
        return self.kv.read_secret_metadata(path=self.path, mount_point="secret")["data"]

    def record(self) -> dict:
        return self.metadata().get("custom_metadata") or {}

    def value(self, version: t.Optional[int] = None) -> str:
        read = self.kv.read_secret_version(path=self.path, version=version, mount_point="secret", raise_on_deleted_version=True)
        return read["data"]["data"]["api_key"]

    def history(self) -> t.Dict[int, str]:
        """Vault version -> fingerprint of the key it holds."""
        return {v: fp(self.value(v)) for v in range(1, int(self.metadata()["current_version"]) + 1)}

    def lease(self) -> t.Optional[dict]:
        """The data of the key's lease secret, None when there is none."""
        try:
            read = self.kv.read_secret_version(path=self.lock_path, mount_point="secret", raise_on_deleted_version=False)
        except hvac.exceptions.InvalidPath:
            return None
        return (read.get("data") or {}).get("data")

    def keys(self, state: t.Optional[dict] = None) -> t.List[dict]:
        """The provider's API keys that belong to this world (its initial and console keys, keys named for its host)."""
        state = state or self.services.state()
        own_ids = {self.old["id"], (self.console or {}).get("id")}
        found = []
        for key in state[self.provider]["keys"]:
            if key.get("kind") != "api":
                continue
            if self.provider == "openai":
                mine = key.get("project_id") == self.project
            else:
                mine = key["id"] in own_ids or str(key.get("name") or "").startswith(self.host + "-")
            if mine:
                found.append(key)
        return found

    def authenticates(self, value: str) -> bool:
        """Ask the provider's zero-token endpoint directly (not through the module under test)."""
        return key_authenticates(self.services.emulator, self.provider, value)

    def secrets(self) -> t.List[str]:
        """Every key value of this world (for assert_no_secret)."""
        values = [self.old["value"], self.services.admin[self.provider]]
        if self.console:
            values.append(self.console["value"])
        try:
            values.append(self.value())
        except Exception:  # pylint: disable=broad-except
            pass
        return values

    def snapshot(self) -> dict:
        """Where the rotation stands (after a kill): stage, Vault version, lease, keys not yet in Vault."""
        meta = self.metadata()
        history = set(self.history().values())
        if self.console:
            history.add(fp(self.console["value"]))  # staged in Vault (at <path>-next), not lost
        lease = self.lease() or {}
        keys = self.keys()
        return {
            "stage": (meta.get("custom_metadata") or {}).get("stage") or "-",
            "version": int(meta["current_version"]),
            "lease": lease.get("state") or "-",
            "unstored": len([k for k in keys if k["status"] not in GONE and k["fingerprint"] not in history]),
            "keys": len(keys),
        }

    # -- the invariants of a finished rotation -----------------------------------

    def problems(self, rotated: bool = True) -> t.List[str]:
        """What is wrong with this key once a run finished (empty when all is well).

        Exactly one rotation happened (Vault version 2, the old key in version 1); Vault's newest
        key is exactly one active provider key, and it authenticates; the previous key is retired
        (disabled; OpenAI: still active) and never deleted; no other key of this world is alive
        (no orphan); every key still alive at the provider is in Vault's history; the record is
        closed and names both keys; the lease is released or expired (a run killed after it closed
        the record leaves nothing to do for the next run, which then does not touch the lease).
        """
        found: t.List[str] = []
        meta = self.metadata()
        record = meta.get("custom_metadata") or {}
        history = self.history()
        newest = history[max(history)]
        old_fp = fp(self.old["value"])
        keys = self.keys()
        by_id = {k["id"]: k for k in keys}
        if not rotated:
            if max(history) != 1 or newest != old_fp:
                found.append("Vault changed although no rotation was expected: %s" % history)
            return found
        if max(history) != 2:
            found.append("Vault holds %d versions, expected exactly one new one: %s" % (max(history), history))
        if history.get(1) != old_fp:
            found.append("version 1 no longer holds the old key")
        if newest == old_fp:
            found.append("Vault still serves the old key")
        active = [k for k in keys if k["status"] == "active"]
        serving = [k for k in active if k["fingerprint"] == newest]
        if len(serving) != 1:
            found.append("Vault's newest key %s is %d active provider keys, not one" % (newest, len(serving)))
        elif not self.authenticates(self.value()):
            found.append("Vault's newest key does not authenticate at the provider")
        new_id = serving[0]["id"] if len(serving) == 1 else None
        old = by_id.get(self.old["id"])
        if old is None or old["status"] != RETIRED[self.provider]:
            found.append("the previous key is %s, expected %s" % (old and old["status"], RETIRED[self.provider]))
        for key in keys:
            if key["id"] in (new_id, self.old["id"]) or key["status"] in GONE:
                continue
            found.append("orphan: key %s (%s) is %s but neither Vault's newest nor the previous key"
                         % (key["id"], key.get("name"), key["status"]))
        in_history = set(history.values())
        for key in keys:
            if key["status"] not in GONE and key["fingerprint"] not in in_history:
                found.append("key %s (%s) is %s at the provider but in no Vault version" % (key["id"], key.get("name"), key["status"]))
        if record.get("stage"):
            found.append("the record still says stage=%s" % record["stage"])
        expected = {"key_id": new_id, "fingerprint": newest, "previous_key_id": self.old["id"],
                    "previous_fingerprint": old_fp, "previous_version": "1"}
        wrong = {k: record.get(k) for k, v in expected.items() if record.get(k) != v}
        if wrong:
            found.append("the record is wrong: %s (expected %s)" % (wrong, {k: expected[k] for k in wrong}))
        lease = self.lease() or {}
        if lease.get("state") == "held" and float(lease.get("expires_epoch") or 0) > time.time():
            found.append("the lease is still held by %s until %s" % (lease.get("owner"), lease.get("expires_at")))
        return found


# -- running ansible-playbook in the background ----------------------------------------


def inventory(worlds: t.Iterable[World], **extra: t.Any) -> dict:
    return {"api_keys": {"hosts": {w.host: dict(w.hostvars, **extra) for w in worlds}}}


class Run:
    """One ansible-playbook started in its own session, output to a file, killed by process group."""

    def __init__(self, ansible: t.Any, playbook: str, inventory_data: dict, env: dict,
                 extra_vars: t.Optional[dict] = None, args: t.Sequence[str] = ()) -> None:
        self.dir = tempfile.mkdtemp(prefix="run-", dir=ansible.workdir)
        inventory_path = os.path.join(self.dir, "inventory.json")
        with open(inventory_path, "w", encoding="utf-8") as handle:
            json.dump(inventory_data, handle)
        cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook, "-i", inventory_path]
        if extra_vars:
            vars_path = os.path.join(self.dir, "extra_vars.json")
            with open(vars_path, "w", encoding="utf-8") as handle:
                json.dump(extra_vars, handle)
            cmd += ["-e", "@" + vars_path]
        cmd += list(args)
        self.events_path = os.path.join(self.dir, "events.jsonl")
        self.kill_log = os.path.join(self.dir, "kill.jsonl")
        run_env = ansible.env(dict(env, PYTHONUNBUFFERED="1"))
        run_env.setdefault("APIKEYS_TEST_EVENTS", self.events_path)
        run_env.setdefault("APIKEYS_KILL_LOG", self.kill_log)
        self.output_path = os.path.join(self.dir, "output.txt")
        self.started = time.monotonic()
        with open(self.output_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.dir, env=run_env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.seconds = 0.0

    def wait(self, timeout: float = 300) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_hung(self.proc.pid, timeout)
            self.proc.wait(timeout=30)
            raise
        finally:
            self.seconds = time.monotonic() - self.started
        return self.proc.returncode

    @property
    def output(self) -> str:
        with open(self.output_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def events(self) -> t.List[dict]:
        return read_jsonl(self.events_path)

    def kill_records(self) -> t.List[dict]:
        return read_jsonl(self.kill_log)

    def play_seconds(self) -> float:
        """From the playbook's start to its end as kill_at logged them: the span a ``time:SECONDS`` timer
        counts in (the process's start-up and exit are outside it); the whole run's time if not logged."""
        at = {r.get("kind"): r["at"] for r in self.kill_records() if r.get("kind") in ("start", "end") and "at" in r}
        return at["end"] - at["start"] if len(at) == 2 else self.seconds


def read_jsonl(path: str) -> t.List[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def recap(output: str) -> t.Dict[str, t.Dict[str, int]]:
    """PLAY RECAP counters per host."""
    found: t.Dict[str, t.Dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s*:\s*(ok=\d+.*)$", output, re.M):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def failures(events: t.List[dict], host: str) -> t.List[str]:
    """The messages of the tasks that failed for ``host`` (rescued ones included)."""
    return ["%s: %s" % (e["task"], str(e["result"].get("msg", ""))[:600])
            for e in events if e.get("host") == host and e.get("event") == "failed"]


def pid_alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def reap(pids: t.Iterable[int], timeout: float = 30) -> t.List[int]:
    """Wait for processes a kill left running (workers finishing a module); SIGKILL the ones still there."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    stuck = [p for p in pids if pid_alive(p)]
    for pid in stuck:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            pass
    return stuck
