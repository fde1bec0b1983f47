"""The rotate role's decisions (plugins/module_utils/rotation.py), table by table."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import warnings

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
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() in a threaded process (pytest-xdist's): the child only writes and exits
        warnings.simplefilter("ignore", DeprecationWarning)
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


# -- the result word, ages ----------------------------------------------------------------

# (lease outcome, resume point, stage found, check mode, waiting for a Console key) -> word
RESULT_TABLE = [
    ("already_rotated", "create", "", False, "already_rotated"),
    ("", "none", "", False, "waiting"),
    ("", "none", "", True, "waiting"),
    ("", "none", "", False, "up_to_date"),
    ("", "none", "", True, "up_to_date"),
    ("", "create", "", True, "would_rotate"),
    ("", "deploy", "stored", True, "would_resume"),
    ("taken", "create", "", False, "rotated"),
    ("taken", "recover", "creating", False, "resumed"),
    ("taken", "retire", "verified", False, "resumed"),
]


@pytest.mark.parametrize("lease,resume,stage,check,expected", RESULT_TABLE)
def test_result_word(lease, resume, stage, check, expected):
    waiting = expected == "waiting"
    assert rotation.result_word(lease, resume, stage, check, waiting) == expected
    assert set(row[-1] for row in RESULT_TABLE) == set(rotation.RESULT_WORDS)


def test_result_table_covers_every_word():
    assert {row[-1] for row in RESULT_TABLE} == set(rotation.RESULT_WORDS)


# (old key, provider, retire_state, the provider refused to delete it) -> the previous key's state
PREVIOUS_STATE_TABLE = [
    ("k-1", "openrouter", "disabled", False, "disabled"),
    ("k-1", "anthropic", "disabled", False, "disabled"),
    ("k-1", "openrouter", "deleted", False, "deleted"),
    ("k-1", "anthropic", "deleted", False, "deleted"),
    ("k-1", "openai", "disabled", False, "active"),  # OpenAI cannot disable a key: cleanup deletes it later
    ("k-1", "openai", "deleted", False, "deleted"),
    ("k-1", "openai", "deleted", True, "active"),  # refused (the service account's last key): stays active
    ("k-1", "openrouter", "deleted", True, "active"),
    ("", "openrouter", "disabled", False, "active"),  # no previous key known: nothing to retire
    ("", "openai", "deleted", False, "active"),
]


@pytest.mark.parametrize("old,provider,retire_state,kept_active,expected", PREVIOUS_STATE_TABLE)
def test_previous_state(old, provider, retire_state, kept_active, expected):
    assert rotation.previous_state(old, provider, retire_state, kept_active) == expected


@pytest.mark.parametrize("seconds,text", [(0, "0m"), (59, "0m"), (300, "5m"), (7200, "2h 0m"), (3 * 86400 + 4 * 3600 + 12 * 60 + 5, "3d 4h 12m"),
                                          (-5, "0m")])
def test_age_text(seconds, text):
    assert rotation.age_text(seconds) == text


# -- cleanup --------------------------------------------------------------------------------

DAY = 86400.0
ROTATED = {"key_id": "k-new", "previous_key_id": "k-old", "previous_state": "disabled"}

# (record, seconds since retired, grace) -> (previous deleted, stale deleted, why the previous key is kept)
CLEANUP_TABLE = [
    ("past the grace period", ROTATED, 8 * DAY, 7 * DAY, ("k-old", [], "")),
    ("inside the grace period", ROTATED, 1 * DAY, 7 * DAY, ("", [], "previous key k-old is inside its grace period")),
    ("no time in the record", ROTATED, None, 7 * DAY, ("", [], "previous key k-old is inside its grace period")),
    ("OpenAI: left active", dict(ROTATED, previous_state="active"), 8 * DAY, 7 * DAY, ("k-old", [], "")),
    ("already deleted", dict(ROTATED, previous_state="deleted"), 8 * DAY, 7 * DAY, ("", [], "")),
    ("rolled back: previous is the key in use", dict(ROTATED, previous_key_id="k-new"), 8 * DAY, 7 * DAY, ("", [], "")),
    ("no previous key", {"key_id": "k-new"}, 8 * DAY, 7 * DAY, ("", [], "")),
    ("stale keys, inside the grace period", dict(ROTATED, stale_key_ids="k-1, k-2,"), 0.0, 7 * DAY,
     ("", ["k-1", "k-2"], "previous key k-old is inside its grace period")),
    ("a rotation unfinished", dict(ROTATED, stage="stored", stale_key_ids="k-1"), 8 * DAY, 7 * DAY,
     ("", [], "a rotation is unfinished (stage stored): run the rotation first")),
    ("grace period zero", ROTATED, 0.0, 0.0, ("k-old", [], "")),
]


@pytest.mark.parametrize("name,record,since,grace,expected", CLEANUP_TABLE, ids=[row[0] for row in CLEANUP_TABLE])
def test_cleanup_plan(name, record, since, grace, expected):
    plan = rotation.cleanup_plan(record, since, grace)
    assert (plan.previous, plan.stale, plan.why_not) == expected, name


# -- the keys a run works with ------------------------------------------------------------

RECORD_CREATING = {"stage": "creating", "key_id": "k-old", "fingerprint": OLD, "pending_key_id": "k-new",
                   "pending_fingerprint": NEW}
RECORD_STORED = {"stage": "stored", "key_id": "k-new", "fingerprint": NEW, "previous_key_id": "k-old",
                 "previous_fingerprint": OLD, "previous_version": "1"}

# (resume, stage, record, what the newest version holds, newest version, current_key_id)
#   -> (old key, old fp, base version, new key, new fp, new version)
PLAN_KEYS_TABLE = [
    ("new, record trusted", "create", "", {"key_id": "k-old", "fingerprint": OLD}, OLD, 1, "",
     ("k-old", OLD, 1, "", "", 0)),
    ("new, record stale (key replaced outside)", "create", "", {"key_id": "k-gone", "fingerprint": OTHER}, OLD, 3, "k-named",
     ("k-named", OLD, 3, "", "", 0)),
    ("new, no record", "create", "", {}, OLD, 1, "", ("", OLD, 1, "", "", 0)),
    ("creating, create again", "create", "creating", RECORD_CREATING, OLD, 1, "", ("k-old", OLD, 1, "", "", 0)),
    ("creating, the store landed", "recover", "creating", RECORD_CREATING, NEW, 2, "", ("k-old", OLD, 1, "k-new", NEW, 2)),
    ("creating, someone else wrote", "conflict", "creating", RECORD_CREATING, OTHER, 2, "", ("k-old", OLD, 2, "k-new", NEW, 0)),
    ("stored", "deploy", "stored", RECORD_STORED, NEW, 2, "", ("k-old", OLD, 1, "k-new", NEW, 2)),
    ("verified", "retire", "verified", dict(RECORD_STORED, stage="verified"), NEW, 2, "", ("k-old", OLD, 1, "k-new", NEW, 2)),
    ("stored, but Vault serves another key", "superseded", "stored", RECORD_STORED, OTHER, 3, "",
     ("k-old", OLD, 1, "k-new", NEW, 0)),
]


@pytest.mark.parametrize("name,resume,stage,record,current,version,named,expected", PLAN_KEYS_TABLE,
                         ids=[row[0] for row in PLAN_KEYS_TABLE])
def test_plan_keys(name, resume, stage, record, current, version, named, expected):
    assert rotation.resume_from(True, stage, current, record) == resume, "the table's resume point is resume_from's"
    keys = rotation.plan_keys(resume, stage, record, current, version, named)
    assert tuple(keys[k] for k in ("old_key_id", "old_fingerprint", "base_version", "new_key_id", "new_fingerprint",
                                   "new_version")) == expected, name


@pytest.mark.parametrize("check_mode", [False, True])
def test_cleanup_result_is_honest_in_check_mode(check_mode):
    plan = {"previous": "k1", "stale": ["k0"], "why_not": ""}
    done = rotation.cleanup_result(plan, ["k0"], {"previous_state": "disabled"}, check_mode)
    assert done["kept_active_key_ids"] == ["k0"]
    if check_mode:
        assert (done["result"], done["changed"], done["deleted_key_ids"], done["would_delete_key_ids"]) == \
            ("would_delete", False, [], ["k1"])
        assert done["previous_state"] == "disabled"
    else:
        assert (done["result"], done["changed"], done["deleted_key_ids"], done["would_delete_key_ids"]) == \
            ("deleted", True, ["k1"], [])
        assert done["previous_state"] == "deleted"


def test_cleanup_result_says_why_nothing_is_deleted():
    inside = rotation.cleanup_result({"previous": "", "stale": [], "why_not": "previous key k1 is inside its grace period"},
                                     [], {}, False, "7d")
    assert inside["result"] == "nothing_to_delete" and inside["kept"] == "previous key k1 is inside its grace period (7d)"
    assert rotation.cleanup_result({"previous": "", "stale": [], "why_not": ""}, [], {}, False)["kept"] == "nothing to delete"


# -- what the plan reads, and whether the key is due -------------------------------------

DAYS = 86400
AT = datetime.datetime(2026, 12, 1, 12, 0, 0)
AT_EPOCH = AT.replace(tzinfo=datetime.timezone.utc).timestamp()


def secret(record=None, version=3, written="2026-11-01T12:00:00.123456789Z", created="2026-01-01T00:00:00Z"):
    return {"exists": True, "current_version": version, "custom_metadata": record, "created_time": created,
            "fingerprints": {"api_key": OLD}, "versions": {str(version): {"created_time": written}, "1": {"created_time": created}}}


# (name, record, force, max_age days) -> age in days, due_reason, resume_from
DUE_TABLE = [
    ("young, no record", None, False, 90, 30, "", "none"),
    ("old enough, no record", None, False, 30, 30, "older than max_age 30d", "create"),
    ("forced", None, True, 90, 30, "forced", "create"),
    ("the last rotation counts, not the version", {"rotated_at": "2026-11-21T12:00:00Z", "fingerprint": OLD}, False, 15,
     10, "", "none"),
    ("an unfinished stage is resumed even when young",
     {"stage": "verified", "fingerprint": OLD, "rotated_at": "2026-11-30T12:00:00Z"}, False, 90, 1,
     "resuming the rotation left at stage verified", "retire"),
    ("an empty record is no record", {}, False, 30, 30, "older than max_age 30d", "create"),
]


@pytest.mark.parametrize("name,record,force,max_days,age_days,reason,resume", DUE_TABLE, ids=[r[0] for r in DUE_TABLE])
def test_plan_start(name, record, force, max_days, age_days, reason, resume):
    start = rotation.plan_start(secret(record), force, max_days * DAYS, "%dd" % max_days, now=AT_EPOCH)
    assert (start["age_seconds"] // DAYS, start["due_reason"], start["resume_from"]) == (age_days, reason, resume), name
    assert start["current_version"] == 3 and start["current_fingerprint"] == OLD
    assert start["record"] == (record or {}) and start["stage_found"] == (record or {}).get("stage", "")


def test_the_age_falls_back_to_the_secret_and_refuses_no_time():
    bare = secret()
    bare["versions"] = {}
    assert rotation.plan_start(bare, False, 400 * DAYS, "400d", now=AT_EPOCH)["age_seconds"] == 334 * DAYS + 12 * 3600
    bare["created_time"] = ""
    with pytest.raises(rotation.DecisionError, match="cannot tell the key's age"):
        rotation.plan_start(bare, False, DAYS, "1d", now=AT_EPOCH)


def test_the_rotation_a_run_works_on():
    fresh = rotation.rotation_identity("", {"rotation_id": "old-one"}, now=AT)
    assert fresh["rotation_started_at"] == "2026-12-01T12:00:00Z"
    assert re.fullmatch(r"20261201120000-[0-9a-f]{4}", fresh["rotation_id"]), fresh
    ids = {rotation.rotation_identity("", {}, now=AT)["rotation_id"] for attempt in range(20)}
    assert len(ids) > 1, "the random part varies"
    resumed = rotation.rotation_identity("stored", {"rotation_id": "r-1", "rotation_started_at": "t0"}, now=AT)
    assert resumed == {"rotation_id": "r-1", "rotation_started_at": "t0"}
    assert rotation.rotation_identity("stored", {"rotation_id": "r-1"})["rotation_started_at"] == ""


# (name, secret, force) -> resume_from, whether it works on a rotation, the problem it names ('' for none)
PLAN_TABLE = [
    ("not due: no rotation, no problem", secret(), False, "none", False, ""),
    ("a new rotation", secret(), True, "create", True, ""),
    ("an unfinished one resumed", secret({"stage": "verified", "fingerprint": OLD, "rotation_id": "r-1",
                                          "previous_key_id": "k-0", "previous_fingerprint": NEW, "previous_version": "2"}),
     False, "retire", True, ""),
    ("an unknown stage", secret({"stage": "retiring", "fingerprint": OLD}), True, "unknown", False,
     "the rotation record at secret/apps/x has stage=retiring, which this role does not know. Nothing was changed."),
    ("no secret", {"exists": False}, True, "none", False,
     "no key at secret/apps/x (the secret does not exist): write the key in use there as the field api_key, then rotate it."),
    ("no api_key field", dict(secret(), fingerprints={}), True, "none", False,
     "no key at secret/apps/x (the secret has no api_key field): write the key in use there as the field api_key, "
     "then rotate it."),
]


@pytest.mark.parametrize("name,read,force,resume,works,problem", PLAN_TABLE, ids=[r[0] for r in PLAN_TABLE])
def test_plan(name, read, force, resume, works, problem):
    planned = rotation.plan(read, force, 90 * DAYS, "90d", "k-named", "secret/apps/x", now=AT_EPOCH)
    assert (planned["resume_from"], planned["problem"]) == (resume, problem), name
    keys = {k: planned[k] for k in rotation.PLAN_KEY_FIELDS}
    if not works:
        assert keys == dict.fromkeys(rotation.PLAN_KEY_FIELDS), "no rotation, no keys: %s" % keys
        return
    start = rotation.plan_start(read, force, 90 * DAYS, "90d", now=AT_EPOCH)
    assert {k: planned[k] for k in start} == start
    expected = rotation.plan_keys(resume, start["stage_found"], start["record"], OLD, 3, "k-named")
    assert {k: planned[k] for k in expected} == expected
    assert planned["rotation_id"] == ("r-1" if start["stage_found"] else planned["rotation_id"])
    assert re.fullmatch(r"r-1|\d{14}-[0-9a-f]{4}", planned["rotation_id"]), planned["rotation_id"]
    if not start["stage_found"]:
        # a new rotation is dated by now, in its id and its start time alike
        assert planned["rotation_id"].startswith("20261201120000-"), planned["rotation_id"]
        assert planned["rotation_started_at"] == "2026-12-01T12:00:00Z"


def test_plans_made_at_one_time_name_one_rotation_start():
    """The role reads the plan once per fact: every read dated alike gives the same start, whenever it runs."""
    read = secret()
    plans = [rotation.plan(read, True, 90 * DAYS, "90d", "", "secret/apps/x", now=AT_EPOCH + 0.9) for dummy in range(3)]
    assert {p["rotation_started_at"] for p in plans} == {"2026-12-01T12:00:00Z"}
    assert {p["rotation_id"][:14] for p in plans} == {"20261201120000"}
    assert {p["age_seconds"] for p in plans} == {plans[0]["age_seconds"]}


# (left over already, new key, old key, old fingerprint, the fingerprint Vault serves now) -> the keys left behind
SUPERSEDED_TABLE = [
    ([], "k-2", "k-1", OLD, "sha256:00000000000f", ["k-2", "k-1"]),
    ([], "k-2", "k-1", OLD, OLD, ["k-2"]),  # the other writer put the previous key back: it is in use, not stale
    (["k-0"], "k-2", "k-1", OLD, "sha256:00000000000f", ["k-0", "k-2", "k-1"]),
    ([" k-0 ", "k-2", ""], "k-2", "k-1", OLD, "", ["k-0", "k-2", "k-1"]),  # trimmed, once each, no empty id
    ([], "", "", OLD, "sha256:00000000000f", []),
]


@pytest.mark.parametrize("stale,new,old,old_fp,served,expected", SUPERSEDED_TABLE)
def test_superseded_stale(stale, new, old, old_fp, served, expected):
    assert rotation.superseded_stale(stale, new, old, old_fp, served) == expected


# (plan's problem, resume_from, preflight's problems) -> why the run stops before it writes ('' = it goes on)
PLAN_STOP_TABLE = [
    ("", "create", [], ""),
    ("", "none", [], ""),
    ("", "create", ["deploy_tasks: no such file", "health_url: not set"],
     "not started, nothing was changed: deploy_tasks: no such file; health_url: not set."),
    ("", "deploy", ["deploy_tasks: no such file"], "not started, nothing was changed: deploy_tasks: no such file."),
    # nothing to do, or a stage it does not know: settings that only a rotation needs do not stop it
    ("", "none", ["deploy_tasks: no such file"], ""),
    ("no key at secret/x (the secret does not exist): ...", "none", ["deploy_tasks: no such file"],
     "no key at secret/x (the secret does not exist): ..."),
    ("the rotation record at secret/x has stage=retiring, ...", "unknown", ["deploy_tasks: no such file"],
     "the rotation record at secret/x has stage=retiring, ..."),
]


@pytest.mark.parametrize("problem,resume,preflight,expected", PLAN_STOP_TABLE)
def test_plan_stop(problem, resume, preflight, expected):
    assert rotation.plan_stop(problem, resume, preflight) == expected


# (name, record, stage found, old key, new key) -> the keys left over that the rotation deletes
STALE_TABLE = [
    ("none", {}, "", "k-1", "", []),
    ("the previous rotation's old key", {"previous_key_id": "k-0", "previous_state": "disabled"}, "", "k-1", "", ["k-0"]),
    ("not once it was deleted", {"previous_key_id": "k-0", "previous_state": "deleted"}, "", "k-1", "", []),
    ("a create resumed counts it too", {"previous_key_id": "k-0"}, "creating", "k-1", "k-2", ["k-0"]),
    ("after store, previous_key_id is this rotation's old key", {"previous_key_id": "k-1", "stale_key_ids": "k-0"},
     "verified", "k-1", "k-2", ["k-0"]),
    ("listed ones, trimmed, once each, in order", {"stale_key_ids": " k-7 ,k-5,,k-7", "previous_key_id": "k-5"}, "",
     "k-1", "", ["k-7", "k-5"]),
    ("never the old or the new key", {"stale_key_ids": "k-1,k-2,k-3"}, "creating", "k-1", "k-2", ["k-3"]),
]


@pytest.mark.parametrize("name,record,stage,old,new,expected", STALE_TABLE, ids=[r[0] for r in STALE_TABLE])
def test_stale_key_ids(name, record, stage, old, new, expected):
    assert rotation.stale_key_ids(record, stage, old, new) == expected, name


def test_plan_table_covers_every_way_the_plan_ends():
    assert {(row[3], row[4], bool(row[5])) for row in PLAN_TABLE} >= {
        ("none", False, False), ("create", True, False), ("unknown", False, True), ("none", False, True)}


# -- the secret read again under the lease ----------------------------------------------

def kv(version, fingerprint=OLD, **record):
    return {"current_version": version, "fingerprints": {"api_key": fingerprint}, "custom_metadata": record or None}


# (name, what the plan read, what is read under the lease) -> outcome
UNDER_LEASE_TABLE = [
    ("nothing moved", kv(3, rotated_at="t1"), kv(3, rotated_at="t1"), "taken"),
    ("nothing moved, no record", kv(1), kv(1), "taken"),
    ("the same unfinished rotation", kv(4, NEW, stage="stored", rotation_id="r1"), kv(4, NEW, stage="stored", rotation_id="r1"),
     "taken"),
    ("another run finished a rotation", kv(3, rotated_at="t1"), kv(4, NEW, rotated_at="t2"), "already_rotated"),
    ("another run finished the first rotation", kv(1), kv(2, NEW, rotated_at="t2"), "already_rotated"),
    ("another run finished the unfinished one", kv(4, NEW, stage="stored", rotation_id="r1"),
     kv(4, NEW, rotated_at="t2", rotation_id="r1"), "already_rotated"),
    ("a person wrote a key", kv(3, rotated_at="t1"), kv(4, OTHER, rotated_at="t1"), "changed"),
    ("another run is half-way", kv(3, rotated_at="t1"), kv(3, stage="creating", rotation_id="r2", rotated_at="t1"), "changed"),
    ("another run's rotation is stored", kv(3, rotated_at="t1"), kv(4, NEW, stage="stored", rotated_at="t2"), "changed"),
    ("another rotation id", kv(4, NEW, stage="stored", rotation_id="r1"), kv(4, NEW, stage="stored", rotation_id="r2"),
     "changed"),
    ("the same version, another key", kv(3), kv(3, OTHER), "changed"),
    ("metadata only, no new rotation", kv(3, rotated_at="t1"), kv(3, rotated_at="t1", note="x"), "taken"),
]


@pytest.mark.parametrize("name,planned,now,expected", UNDER_LEASE_TABLE, ids=[r[0] for r in UNDER_LEASE_TABLE])
def test_under_lease(name, planned, now, expected):
    assert rotation.under_lease(planned, now) == expected, name


def test_under_lease_table_covers_every_outcome():
    assert {row[3] for row in UNDER_LEASE_TABLE} == set(rotation.UNDER_LEASE)
