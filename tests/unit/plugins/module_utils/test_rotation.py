"""The rotate role's decisions (plugins/module_utils/rotation.py), table by table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation
from ansible_collections.apikeys.rotation.plugins.module_utils.rotation import Holder

OLD, NEW, OTHER = "sha256:000000000001", "sha256:000000000002", "sha256:00000000000f"


# -- resume -----------------------------------------------------------------------------

# (due, stage, what the newest version holds, the record's fingerprint / pending fingerprint) -> start
RESUME_TABLE = [
    (False, "", OLD, {}, "none"),
    (False, "stored", NEW, {"fingerprint": NEW}, "none"),
    (True, "", OLD, {"fingerprint": OLD}, "create"),
    (True, "", OLD, {}, "create"),
    (True, "creating", NEW, {"fingerprint": OLD, "pending_fingerprint": NEW}, "recover"),
    (True, "creating", OLD, {"fingerprint": OLD, "pending_fingerprint": NEW}, "create"),
    (True, "creating", OLD, {"fingerprint": OLD}, "create"),
    (True, "creating", OTHER, {"fingerprint": OLD, "pending_fingerprint": NEW}, "conflict"),
    (True, "stored", NEW, {"fingerprint": NEW}, "deploy"),
    (True, "stored", OTHER, {"fingerprint": NEW}, "superseded"),
    (True, "stored", OLD, {"fingerprint": NEW}, "superseded"),
    (True, "verified", NEW, {"fingerprint": NEW}, "retire"),
    (True, "verified", OTHER, {"fingerprint": NEW}, "superseded"),
    (True, "retiring", NEW, {"fingerprint": NEW}, "unknown"),
]


@pytest.mark.parametrize("due,stage,current,record,expected", RESUME_TABLE)
def test_resume_from(due, stage, current, record, expected):
    assert rotation.resume_from(due, stage, current, dict(record, stage=stage)) == expected


def test_resume_table_covers_every_resume_point():
    assert {row[-1] for row in RESUME_TABLE} == set(rotation.RESUME_POINTS)


# -- lease ------------------------------------------------------------------------------

HERE = Holder(controller="ctl", boot_id="boot-1", pid="100", pid_start="5000")
NOW = 1_000_000.0


def held(**extra):
    data = {"state": "held", "owner": "run-a", "expires_epoch": str(int(NOW + 600)),
            "controller": "ctl", "boot_id": "boot-1", "pid": "200", "pid_start": "6000"}
    data.update(extra)
    return data


def alive_if(pids):
    return lambda pid, start: (pid, start) in pids


RUNNING = alive_if({(200, "6000")})
GONE = alive_if(set())

# (lease data, rotate_lease_break, is the holder's process alive) -> (outcome, take, taken over from)
LEASE_TABLE = [
    ("none", None, "", RUNNING, ("free", True, "")),
    ("released", {"state": "released", "owner": "run-a"}, "", RUNNING, ("free", True, "")),
    ("held and running", held(), "", RUNNING, ("held", False, "")),
    ("held, expired", held(expires_epoch=str(int(NOW - 1))), "", RUNNING, ("expired", True, "run-a")),
    ("held, expiry unreadable", held(expires_epoch="soon"), "", RUNNING, ("expired", True, "run-a")),
    ("held, broken by owner", held(), "run-a", RUNNING, ("broken", True, "run-a")),
    ("held, break names another owner", held(), "run-b", RUNNING, ("held", False, "")),
    ("held, holder dead on this controller", held(), "", GONE, ("dead_holder", True, "run-a")),
    ("held, pid reused by another process", held(), "", alive_if({(200, "7777")}), ("dead_holder", True, "run-a")),
    ("held, dead holder on another controller", held(controller="other"), "", GONE, ("held", False, "")),
    ("held, dead holder before a reboot", held(boot_id="boot-0"), "", GONE, ("held", False, "")),
    ("held by a run that wrote no identity", held(controller="", boot_id="", pid="", pid_start=""), "", GONE,
     ("held", False, "")),
]


@pytest.mark.parametrize("name,lease,break_owner,alive,expected", LEASE_TABLE, ids=[row[0] for row in LEASE_TABLE])
def test_lease_decision(name, lease, break_owner, alive, expected):
    decision = rotation.lease_decision(lease, NOW, break_owner, here=HERE, alive=alive)
    assert (decision.outcome, decision.take, decision.taken_over_from) == expected, name
    assert decision.holder == {"controller": "ctl", "boot_id": "boot-1", "pid": "100", "pid_start": "5000"}


def test_lease_table_covers_every_outcome():
    assert {row[-1][0] for row in LEASE_TABLE} == set(rotation.LEASE_OUTCOMES)


def test_no_proof_without_a_boot_id_here():
    here = Holder(controller="ctl", boot_id="", pid="1", pid_start="1")
    lease = held(boot_id="")
    assert rotation.lease_decision(lease, NOW, here=here, alive=GONE).outcome == "held"


@pytest.mark.parametrize("lease,alive,expected", [
    (None, GONE, False),
    ({"state": "released"}, GONE, False),
    (held(), RUNNING, False),
    (held(), GONE, True),
    (held(controller="other"), GONE, False),
])
def test_dead_lease(lease, alive, expected):
    assert rotation.dead_lease(lease, here=HERE, alive=alive) is expected


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_the_real_process_checks():
    """A child that has exited is dead; this process is alive; the controller process is found."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # pylint: disable=consider-using-with
    start = rotation.process_start(child.pid)
    child.wait()
    assert not rotation.process_alive(child.pid, start or "1")
    me = os.getpid()
    assert rotation.process_alive(me, rotation.process_start(me))
    assert not rotation.process_alive(me, "0")
    assert rotation.boot_id()
    here = Holder.here()
    assert here.pid.isdigit() and here.pid_start and here.controller
    # a forked child (as Ansible's workers are) names its parent as the controller process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, str(rotation.controller_process()).encode())
        os._exit(0)  # pylint: disable=protected-access
    os.waitpid(pid, 0)
    assert int(os.read(read, 64)) == rotation.controller_process()


# -- rollback ---------------------------------------------------------------------------

AFTER_ROTATION = {"key_id": "k-new", "fingerprint": NEW, "previous_key_id": "k-old",
                  "previous_fingerprint": OLD, "previous_version": "1", "previous_state": "disabled"}

# (record, newest version, what it holds, previous version's key, the key below the newest)
#   -> (state, to key, to fp, from key, from fp, from version)
ROLLBACK_TABLE = [
    ("after a rotation", AFTER_ROTATION, 2, NEW, OLD, None, ("fresh", "k-old", OLD, "k-new", NEW, 2)),
    ("record without previous fingerprint", dict(AFTER_ROTATION, previous_fingerprint=""), 2, NEW, OLD, None,
     ("fresh", "k-old", OLD, "k-new", NEW, 2)),
    ("the write landed, the record did not", AFTER_ROTATION, 3, OLD, OLD, NEW,
     ("resume", "k-old", OLD, "k-new", NEW, 2)),
    ("already rolled back", dict(AFTER_ROTATION, key_id="k-old", fingerprint=OLD, previous_key_id="k-new",
                                 previous_fingerprint=NEW, previous_version="2", rolled_back_from="k-new"),
     3, OLD, NEW, None, ("done", "k-old", OLD, "k-new", NEW, 2)),
]


@pytest.mark.parametrize("name,record,version,current,previous,below,expected", ROLLBACK_TABLE,
                         ids=[row[0] for row in ROLLBACK_TABLE])
def test_plan_rollback(name, record, version, current, previous, below, expected):
    plan = rotation.plan_rollback(record, version, current, previous, below)
    assert (plan.state, plan.to_key_id, plan.to_fingerprint, plan.from_key_id, plan.from_fingerprint,
            plan.from_version) == expected, name
    assert rotation.needs_below(record, current, previous) is (expected[0] == "resume")
    written = plan.record("2026-12-02T00:00:00Z")
    assert written["previous_fingerprint"] == expected[4] and written["previous_version"] == str(expected[5])
    assert written["fingerprint"] == expected[2] and written["key_id"] == expected[1]


def test_rollback_resume_needs_the_version_below():
    with pytest.raises(rotation.DecisionError, match="read the version below"):
        rotation.plan_rollback(AFTER_ROTATION, 3, OLD, OLD)


def test_rollback_refuses_what_it_cannot_tell_apart():
    with pytest.raises(rotation.DecisionError, match="Nothing was changed"):
        rotation.plan_rollback(AFTER_ROTATION, 3, OLD, OLD, below_fingerprint=OTHER)
