# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/lease.py (the vault_lease module): take, renew and release a lease against an in-memory KV v2."""

from __future__ import annotations

import pytest

pytest.importorskip("hvac")

# pylint: disable=wrong-import-position
from ansible_collections.apikeys.rotation.plugins.module_utils import lease, rotation  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import (  # noqa: E402
    SecretVersion, cas_conflict_error)

NOW = 1767225600.0
HERE = rotation.Holder(controller="ctl", boot_id="boot-1", pid="100", pid_start="5000")


class FakeKV:
    """Versions and custom_metadata in memory, with Vault's check-and-set; ``race`` writes just before a write."""

    def __init__(self, name, versions=(), custom_metadata=None):
        self.mount, self.path = name.split("/", 1)
        self.name = name
        self.versions = [dict(v) for v in versions]
        self.custom_metadata = dict(custom_metadata or {})
        self.race = None
        self.writes = []

    def read_version(self, version=None):
        number = version or len(self.versions)
        if not number or number > len(self.versions):
            return None
        return SecretVersion(number, dict(self.versions[number - 1]), "live", "t", None, dict(self.custom_metadata))

    def read_metadata(self):
        if not self.versions:
            return None
        return {"current_version": len(self.versions), "custom_metadata": dict(self.custom_metadata),
                "versions": {str(i + 1): {"created_time": "t"} for i in range(len(self.versions))}}

    def write(self, data, cas):
        if self.race:
            self.versions.append(dict(self.race))
            self.race = None
        if cas != len(self.versions):
            raise cas_conflict_error(self.mount, self.path, cas, len(self.versions))
        self.writes.append((dict(data), cas))
        self.versions.append(dict(data))
        return len(self.versions)


def held_by(owner="run-a", expires=NOW + 600, **holder):
    data = {"state": "held", "owner": owner, "host": "app", "job": "", "acquired_at": "2026-01-01T00:00:00Z",
            "expires_at": lease.utc_text(expires), "expires_epoch": str(int(expires)),
            "controller": "ctl", "boot_id": "boot-1", "pid": "200", "pid_start": "6000"}
    data.update(holder)
    return data


def world(lease_versions=(), stage=""):
    record = {"provider": "openai", "rotation_id": "r-1"}
    if stage:
        record["stage"] = stage
    return FakeKV("secret/apps/app.lock", lease_versions), FakeKV("secret/apps/app", [{"api_key": "sk-old"}], record)


def planned_of(secret):
    from ansible_collections.apikeys.rotation.plugins.module_utils.vault import describe_secret
    return describe_secret(secret)


@pytest.fixture(name="on_the_controller")
def on_the_controller_fixture(monkeypatch):
    """This code runs on the controller HERE names; the process 200 started at 6000 is alive unless told."""
    alive = {"pids": {(200, "6000")}}
    monkeypatch.setattr(lease, "machine_is", lambda holder: holder == HERE)
    monkeypatch.setattr(rotation, "process_alive", lambda pid, start: (pid, start) in alive["pids"])
    return alive


def take(lease_kv, secret_kv, planned=None, **kwargs):
    args = dict(owner="run-b", host="app", job="41", holder=HERE, ttl_seconds=900, now=lambda: NOW)
    args.update(kwargs)
    return lease.take(lease_kv, secret_kv, planned if planned is not None else planned_of(secret_kv), **args)


def test_a_free_lease_is_taken_with_cas_and_names_this_run(on_the_controller):
    lease_kv, secret_kv = world()
    result = take(lease_kv, secret_kv)
    assert result["outcome"] == "taken" and result["version"] == 1 and result["taken_over_from"] == ""
    (data, cas), = lease_kv.writes
    assert cas == 0
    assert data == dict(held_by("run-b", NOW + 900, pid="100", pid_start="5000", job="41",
                                acquired_at=lease.utc_text(NOW)), taken_over_from="", taken_over_because="")
    assert result["lease"] == data and result["written_epoch"] == NOW
    assert result["secret"]["custom_metadata"]["rotation_id"] == "r-1", "the secret as read under the lease"


@pytest.mark.parametrize("name,found,break_owner,dead,because", [
    ("released", {"state": "released", "owner": "run-a"}, "", False, ""),
    ("expired", held_by(expires=NOW - 1), "", False, "expired"),
    ("broken", held_by(), "run-a", False, "broken"),
    ("dead holder here", held_by(), "", True, "dead_holder"),
])
def test_a_lease_that_may_be_taken_is_taken_over(on_the_controller, name, found, break_owner, dead, because):
    if dead:
        on_the_controller["pids"].clear()
    lease_kv, secret_kv = world([found])
    result = take(lease_kv, secret_kv, break_owner=break_owner)
    (data, cas), = lease_kv.writes
    assert cas == 1 and result["version"] == 2, name
    assert data["taken_over_because"] == because and result["decision"]["outcome"] == (because or "free"), name
    assert data["taken_over_from"] == ("run-a" if because else ""), name


@pytest.mark.parametrize("name,found,machine_here,alive", [
    ("held by a live run", held_by(), True, True),
    ("holder's process gone, but this code runs on another machine", held_by(), False, False),
    ("holder on another controller", held_by(controller="awx-container"), True, False),
])
def test_a_held_lease_stops_the_run_and_writes_nothing(monkeypatch, name, found, machine_here, alive):
    monkeypatch.setattr(rotation, "process_alive", lambda pid, start: alive)
    monkeypatch.setattr(lease, "machine_is", lambda holder: machine_here)
    lease_kv, secret_kv = world([found])
    with pytest.raises(lease.LeaseError) as failed:
        take(lease_kv, secret_kv)
    assert failed.value.details["lease_error"] == "held", name
    message = failed.value.message
    assert message.startswith("app: rotation in progress in another run; this run changed nothing.")
    assert "held by run run-a" in message and message.endswith("-e rotate_lease_break=run-a.")
    assert lease_kv.writes == [] and len(lease_kv.versions) == 1


def test_two_runs_at_once_one_gets_the_lease(on_the_controller):
    lease_kv, secret_kv = world()
    lease_kv.race = held_by("run-c")
    with pytest.raises(lease.LeaseError) as failed:
        take(lease_kv, secret_kv)
    assert failed.value.details["lease_error"] == "cas_conflict" and failed.value.details["cas_conflict"] is True
    assert "Another run took the lease secret/apps/app.lock at the same moment (lease version 1)" in failed.value.message
    assert lease_kv.versions == [held_by("run-c")], "the other run's lease stands"


def test_a_secret_changed_since_the_plan_stops_the_run_but_the_lease_can_be_given_back(on_the_controller):
    lease_kv, secret_kv = world()
    planned = planned_of(secret_kv)
    secret_kv.versions.append({"api_key": "sk-someone-elses"})
    with pytest.raises(lease.LeaseError) as failed:
        take(lease_kv, secret_kv, planned)
    details = failed.value.details
    assert details["lease_error"] == "changed" and details["version"] == 1, "the lease is held: the run releases it"
    assert "another run or person changed the secret while this run started" in failed.value.message
    assert "was at version 1 (stage none) and is now at version 2" in failed.value.message
    assert "sk-" not in failed.value.message
    released = lease.release(lease_kv, details, "app", now=lambda: NOW)
    assert released["released"] and lease_kv.versions[-1]["state"] == "released"


def test_a_rotation_finished_meanwhile_is_reported_or_refused(on_the_controller):
    lease_kv, secret_kv = world()
    planned = planned_of(secret_kv)
    secret_kv.versions.append({"api_key": "sk-new"})
    secret_kv.custom_metadata["rotated_at"] = "2026-01-01T00:00:00Z"
    assert take(lease_kv, secret_kv, planned, accept_rotated=True)["outcome"] == "already_rotated"
    lease_kv2 = world()[0]
    with pytest.raises(lease.LeaseError) as failed:
        take(lease_kv2, secret_kv, planned)
    assert failed.value.details["lease_error"] == "already_rotated"
    assert "already rotated by another run" in failed.value.message


def test_check_mode_decides_but_writes_nothing(on_the_controller):
    lease_kv, secret_kv = world([held_by(expires=NOW - 1)])
    result = take(lease_kv, secret_kv, check_mode=True)
    assert result["version"] is None and result["taken_over_from"] == "run-a" and lease_kv.writes == []


def test_renewal_counts_from_now_and_carries_the_take_on(on_the_controller):
    lease_kv, secret_kv = world()
    taken = take(lease_kv, secret_kv)
    renewed = lease.renew(lease_kv, taken, "app", 900, "15m", "retire", now=lambda: NOW + 400)
    (data, cas) = lease_kv.writes[-1]
    assert cas == 1 and renewed["version"] == 2 and data["step"] == "retire"
    assert data["expires_epoch"] == str(int(NOW + 1300)) and data["acquired_at"] == taken["lease"]["acquired_at"]
    assert data["pid"] == "100" and renewed["written_epoch"] == NOW + 400
    assert renewed["outcome"] == "taken" and renewed["secret"] == taken["secret"]
    registered = dict(renewed, invocation={"module_args": {}}, failed=False)  # as a play registers it
    again = lease.renew(lease_kv, registered, "app", 900, "15m", "retire", now=lambda: NOW + 500)
    assert set(again) == set(renewed) and again["version"] == 3, "only the lease's own state is carried on"


def test_a_lost_lease_stops_the_renewal(on_the_controller):
    lease_kv, secret_kv = world()
    taken = take(lease_kv, secret_kv)
    lease_kv.versions.append(held_by("run-c"))  # slower than the TTL: another run took it over
    with pytest.raises(lease.LeaseError) as failed:
        lease.renew(lease_kv, taken, "app", 900, "15m", "restore", "r-1", "(Nothing was revoked.)", now=lambda: NOW)
    assert failed.value.details["lease_error"] == "lost"
    message = failed.value.message
    assert message.startswith("app: rotation r-1 stopped before restore: another run took its lease")
    assert "rotate_lease_ttl (15m)" in message and message.endswith("(Nothing was revoked.)")
    assert lease_kv.versions[-1] == held_by("run-c")


def test_release_and_the_lease_of_a_dead_run(on_the_controller):
    lease_kv, secret_kv = world()
    taken = take(lease_kv, secret_kv)
    assert lease.release(lease_kv, taken, "app", now=lambda: NOW)["version"] == 2
    assert lease_kv.versions[-1] == {"state": "released", "owner": "run-b", "host": "app",
                                     "released_at": lease.utc_text(NOW)}
    with pytest.raises(lease.LeaseError):
        lease.release(lease_kv, {"failed": True}, "app")
    # a run with nothing to do: a live holder's lease stays, a dead one's is released
    live_kv = world([held_by()])[0]
    assert lease.release_dead(live_kv, "app", HERE)["released"] is False and live_kv.writes == []
    on_the_controller["pids"].clear()
    dead = lease.release_dead(live_kv, "app", HERE, now=lambda: NOW)
    assert dead["released"] and dead["released_from"] == "run-a"
    assert live_kv.versions[-1]["released_because"] == "its holder's process is gone"
