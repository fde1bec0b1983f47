# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent runs on one key: exactly one rotation, the others stop clearly, nothing orphaned.

An AWX schedule overlapping a manual run, two operators at once: 2 to 4 real ansible-playbook
runs of the rotation are started on the same key a fraction of a second apart. The key's lease
(a KV v2 secret beside the key, taken with check-and-set) lets one of them rotate; the others
stop with "rotation in progress" (the lease is held) or "already rotated" (the winner finished
before they got it), having created nothing. A run that died holding the lease blocks the key
until the lease expires, or until it is broken by naming its owner; a run that lost its lease
(slower than the TTL) stops before its next step. Outcomes are checked out of band.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import typing as t

import pytest

from harness import assert_no_secret, wait_for
from rotation_world import ROTATE, Run, Services, World, failures, inventory, recap

ROLLBACK = "apikeys.rotation.rollback"
CLEANUP = "apikeys.rotation.cleanup"
SEED = int(os.environ.get("APIKEYS_CRASH_SEED") or time.strftime("%Y%m%d"))
IN_PROGRESS = "rotation in progress in another run; this run changed nothing"
ALREADY = "already rotated by another run"
UP_TO_DATE = "up to date:"
# (provider, number of runs started together, repetition)
OVERLAPS = [("openrouter", 2, 0), ("openai", 3, 0), ("anthropic", 4, 0), ("openrouter", 4, 1), ("openai", 2, 1), ("anthropic", 3, 1)]


def text(run: Run) -> str:
    """The run's output with whitespace runs folded (messages are folded YAML scalars)."""
    return re.sub(r"\s+", " ", run.output)


def outcome(run: Run, host: str) -> str:
    """rotated | in progress | already rotated | up to date | unclear."""
    output = text(run)
    summaries = re.findall(r'"result": "([^"]*)"', output)
    if run.proc.returncode == 0 and summaries and summaries[-1] == "rotated":
        return "rotated"
    if run.proc.returncode != 0 and IN_PROGRESS in output:
        return "in progress" if "at the same moment" not in output else "in progress (same moment)"
    if run.proc.returncode == 0 and any(s.startswith(ALREADY) for s in summaries):
        return "already rotated"
    if run.proc.returncode == 0 and any(s.startswith(UP_TO_DATE) for s in summaries):
        return "up to date"
    return "unclear (rc=%s, recap %s)" % (run.proc.returncode, recap(output).get(host))


@pytest.mark.parametrize("provider,runs,repeat", OVERLAPS, ids=["%s-%dx-%d" % case for case in OVERLAPS])
def test_overlapping_runs_rotate_once(provider, runs, repeat, openbao, emulator, ansible, kv_path):
    rng = random.Random("%d-%s-%d-%d" % (SEED, provider, runs, repeat))
    services = Services(openbao, emulator)
    world = World(services, provider, "shared-" + provider, kv_path)
    started: t.List[Run] = []
    offsets = []
    for index in range(runs):
        offset = rng.uniform(0.0, 0.6)
        offsets.append(round(offset, 2))
        time.sleep(offset)
        # A manual run forces the rotation; a scheduled one rotates because the key is due.
        started.append(Run(ansible, ROTATE, inventory([world]), services.env,
                           extra_vars={"rotate_force": True} if index % 2 == 0 else None))
    for run in started:
        run.wait()
    outcomes = [outcome(run, world.host) for run in started]
    print("seed %d, %s, %d runs, start offsets %s: %s" % (SEED, provider, runs, offsets, outcomes))
    context = "\n\n".join(run.output[-2500:] for run in started)
    assert outcomes.count("rotated") == 1, (outcomes, context)
    assert all(o in ("rotated", "in progress", "in progress (same moment)", "already rotated", "up to date") for o in outcomes), (
        outcomes, context)
    for run in started:
        counters = recap(run.output).get(world.host, {})
        if outcome(run, world.host) != "rotated":
            assert counters.get("changed") == 0, "a run that did not rotate changed something: %s" % counters
        assert_no_secret(run.output, *world.secrets())
    # One rotation: one new Vault version, one new key ever made (none made and revoked by a loser).
    assert world.problems() == [], world.problems()
    made = [k for k in world.keys() if k["id"] not in (world.old["id"], (world.console or {}).get("id"))]
    if provider == "anthropic":
        assert made == [], "the Console-made key is the only new key"
    else:
        assert len(made) == 1 and made[0]["status"] == "active", made


def kill_holding_the_lease(ansible, services: Services, world: World, ttl: str,
                           task: str = "Pre-verify | probe the new key at the provider until it authenticates", **extra_vars: t.Any) -> dict:
    """A run killed (SIGKILL, whole tree) as ``task`` starts (by default right after it asked the provider for
    the new key): its lease stays held."""
    env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED="record_results,kill_at", APIKEYS_KILL_AT="name:" + task)
    run = Run(ansible, ROTATE, inventory([world], rotate_lease_ttl=ttl), env, extra_vars=extra_vars or None)
    run.wait()
    assert [r for r in run.kill_records() if r.get("kill")], run.output[-4000:]
    lease = world.lease()
    assert lease and lease["state"] == "held", lease
    return lease


def as_if_elsewhere(world: World, lease: dict) -> dict:
    """The same lease as a run on another controller (an AWX job's container) leaves it: nothing here proves it dead."""
    moved = dict(lease, controller="awx-job-412-container")
    world.kv.create_or_update_secret(path=world.lock_path, secret=moved, mount_point="secret")
    return moved


def test_dead_holder_on_this_controller_is_taken_over_at_once(openbao, emulator, ansible, kv_path):
    """Killed here, its lease valid for 15 more minutes: the next run proves its holder gone and finishes the rotation."""
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "dead-here", kv_path)
    lease = kill_holding_the_lease(ansible, services, world, "15m")
    assert lease["controller"] and lease["boot_id"] and lease["pid"] and lease["pid_start"], lease
    assert float(lease["expires_epoch"]) > time.time() + 600, lease
    resumed = Run(ansible, ROTATE, inventory([world]), services.env)
    assert resumed.wait() == 0, resumed.output[-4000:]
    assert '"taken_over_from": "%s"' % lease["owner"] in resumed.output
    assert '"taken_over_because": "dead_holder"' in resumed.output
    assert world.problems() == [], world.problems()
    assert world.lease()["state"] == "released"
    assert_no_secret(resumed.output, *world.secrets())


def test_a_run_with_nothing_to_do_releases_a_dead_runs_lease(openbao, emulator, ansible, kv_path):
    """Killed as it closed the record, the rotation is complete; the next run finds nothing to do and releases the lease."""
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "dead-done", kv_path)
    kill_holding_the_lease(ansible, services, world, "15m", task="Lease | release the lease")
    assert not world.record().get("stage"), world.record()
    idle = Run(ansible, ROTATE, inventory([world]), services.env)
    assert idle.wait() == 0, idle.output[-4000:]
    assert "up to date" in text(idle)
    assert world.lease()["state"] == "released", world.lease()
    assert world.problems() == [], world.problems()
    # a lease held elsewhere is left alone by such a run
    lease = as_if_elsewhere(world, dict(world.lease(), state="held", expires_epoch=str(int(time.time() + 900))))
    again = Run(ansible, ROTATE, inventory([world]), services.env)
    assert again.wait() == 0, again.output[-4000:]
    assert world.lease() == lease


def test_dead_holder_blocks_until_broken_by_name(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "stale", kv_path)
    lease = as_if_elsewhere(world, kill_holding_the_lease(ansible, services, world, "15m"))
    assert world.record().get("stage") == "creating"
    record, keys = world.record(), world.keys()

    blocked = Run(ansible, ROTATE, inventory([world]), services.env)
    assert blocked.wait() != 0
    print("the blocked run says: %s" % failures(blocked.events(), world.host))
    assert IN_PROGRESS in text(blocked) and lease["owner"] in blocked.output, blocked.output[-3000:]
    assert "-e rotate_lease_break=%s" % lease["owner"] in text(blocked)
    assert world.record() == record and world.keys() == keys and world.lease() == lease, "the blocked run changed something"

    # Breaking someone else's lease is refused: the owner must be named.
    wrong = Run(ansible, ROTATE, inventory([world]), services.env, extra_vars={"rotate_lease_break": "not-the-owner"})
    assert wrong.wait() != 0 and IN_PROGRESS in text(wrong), wrong.output[-3000:]
    assert world.record() == record and world.lease() == lease

    broken = Run(ansible, ROTATE, inventory([world]), services.env, extra_vars={"rotate_lease_break": lease["owner"]})
    assert broken.wait() == 0, broken.output[-4000:]
    assert "rotation resumed at create and finished" in text(broken)
    assert '"taken_over_from": "%s"' % lease["owner"] in broken.output
    assert world.problems() == [], world.problems()
    orphan = [k for k in world.keys() if k["id"] not in (world.old["id"], world.record()["key_id"])]
    assert len(orphan) == 1 and orphan[0]["status"] == "deleted", "the dead run's key was revoked: %s" % orphan
    for run in (blocked, wrong, broken):
        assert_no_secret(run.output, *world.secrets())


def test_dead_holder_is_taken_over_after_the_ttl(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    world = World(services, "openai", "expiring", kv_path)
    lease = as_if_elsewhere(world, kill_holding_the_lease(ansible, services, world, "3s"))
    assert world.record().get("stage") == "creating"
    # Nobody intervenes: once the lease has expired, the next (scheduled) run takes it over.
    wait_for(lambda: time.time() > float(lease["expires_epoch"]) + 0.2, 30, "the lease to expire")
    resumed = Run(ansible, ROTATE, inventory([world]), services.env)
    assert resumed.wait() == 0, resumed.output[-4000:]
    assert '"taken_over_from": "%s"' % lease["owner"] in resumed.output
    assert world.problems() == [], world.problems()
    assert world.lease()["state"] == "released"
    assert_no_secret(resumed.output, *world.secrets())


def waiting_hook(tmp_path, flag: str) -> str:
    """A deploy hook that hangs until the file ``flag`` (a path or a Jinja expression) exists."""
    hook = tmp_path / "hook.yml"
    hook.write_text(json.dumps([{"name": "Hook | consumers reload (waits for the test)",
                                 "ansible.builtin.wait_for": {"path": flag, "timeout": 180}}]))
    return str(hook)


def test_run_that_lost_its_lease_stops_before_retiring(openbao, emulator, ansible, kv_path, tmp_path):
    """A run slower than its lease TTL (a deploy hook that hangs) is overtaken; it stops at its next renewal."""
    services = Services(openbao, emulator)
    flag = tmp_path / "go"
    world = World(services, "openrouter", "slow", kv_path, rotate_lease_ttl="2s", deploy_tasks=waiting_hook(tmp_path, str(flag)))
    slow = Run(ansible, ROTATE, inventory([world]), services.env)
    try:
        wait_for(lambda: world.record().get("stage") == "stored" or slow.proc.poll() is not None, 180, "the first run to store")
        assert slow.proc.poll() is None, slow.output[-3000:]
        lease = world.lease()
        slow_owner = lease["owner"]
        # the first run waits in its deploy hook, renewing nothing, until its lease has expired
        wait_for(lambda: time.time() > float(lease["expires_epoch"]) + 0.5, 60, "the first run's lease to expire")
        fast = Run(ansible, ROTATE, inventory([world]), services.env)
        wait_for(lambda: (world.lease() or {}).get("owner") != slow_owner or fast.proc.poll() is not None, 180,
                 "the second run to take the expired lease over")
    finally:
        flag.write_text("go")
    assert fast.wait() == 0, fast.output[-4000:]
    assert slow.wait() != 0, slow.output[-4000:]
    assert "rotation resumed at deploy and finished" in text(fast)
    assert '"taken_over_from": "%s"' % slow_owner in fast.output
    assert "stopped before retire: another run took its lease" in text(slow), slow.output[-3000:]
    assert world.problems() == [], world.problems()
    for run in (slow, fast):
        assert_no_secret(run.output, *world.secrets())


def test_overtaken_run_whose_verify_fails_restores_nothing(openbao, emulator, ansible, kv_path, tmp_path):
    """A run overtaken in its deploy hook, whose verify then fails, does not write the previous key back:
    the run that took its lease over may already have retired that key."""
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "overtaken", kv_path, rotate_lease_ttl="2s",
                  deploy_tasks=waiting_hook(tmp_path, "{{ hook_flag }}"), rotate_probe_retries=2)
    slow_flag, fast_flag = tmp_path / "slow", tmp_path / "fast"
    slow = Run(ansible, ROTATE, inventory([world]), services.env, extra_vars={"hook_flag": str(slow_flag)})
    try:
        wait_for(lambda: world.record().get("stage") == "stored" or slow.proc.poll() is not None, 180, "the first run to store")
        assert slow.proc.poll() is None, slow.output[-3000:]
        lease = world.lease()
        slow_owner = lease["owner"]
        wait_for(lambda: time.time() > float(lease["expires_epoch"]) + 0.5, 60, "the first run's lease to expire")
        fast = Run(ansible, ROTATE, inventory([world]), services.env, extra_vars={"hook_flag": str(fast_flag)})
        fast_flag.write_text("go")
        assert fast.wait() == 0, fast.output[-4000:]
        assert '"taken_over_from": "%s"' % slow_owner in fast.output
        assert world.problems() == [], world.problems()
        finished = world.history()
        # The provider now refuses every probe: the overtaken run's verify fails.
        services.emulator.control("POST", "faults", {"provider": "openrouter", "method": "GET", "path": "^/key$",
                                                     "status": 401, "count": 1000})
    finally:
        slow_flag.write_text("go")
        fast_flag.write_text("go")
    assert slow.wait() != 0, slow.output[-4000:]
    services.emulator.control("DELETE", "faults")
    assert "stopped before restore: another run took its lease" in text(slow), slow.output[-3000:]
    assert "did not authenticate" in text(slow), "the message keeps why verify failed"
    assert world.history() == finished, "the overtaken run wrote nothing to Vault"
    assert world.problems() == [], world.problems()
    assert_no_secret(slow.output, *world.secrets())


def test_rollback_and_cleanup_wait_for_a_rotation_in_progress(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    world = World(services, "anthropic", "guarded", kv_path)
    first = Run(ansible, ROTATE, inventory([world]), services.env)
    assert first.wait() == 0, first.output[-4000:]
    assert world.problems() == []
    # A second rotation (a new Console key staged) dies holding the lease, before it changed anything else.
    console = services.emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "console-guarded-2"})
    world.kv.create_or_update_secret(path=world.path + "-next", secret={"api_key": console["value"]}, mount_point="secret")
    lease = kill_holding_the_lease(ansible, services, world, "15m", task="Create | create the new key at the provider",
                                   rotate_force=True)
    lease = as_if_elsewhere(world, lease)  # an AWX job's container, say: nothing proves here that it is gone
    assert "stage" not in world.record()
    record, versions = world.record(), world.history()
    for playbook, args in ((ROLLBACK, ["-l", world.host]), (CLEANUP, [])):
        blocked = Run(ansible, playbook, inventory([world], grace_period="0s"), services.env, args=args)
        assert blocked.wait() != 0, blocked.output[-3000:]
        assert IN_PROGRESS in text(blocked) and lease["owner"] in blocked.output, blocked.output[-3000:]
        assert world.record() == record and world.history() == versions and world.lease() == lease
        assert_no_secret(blocked.output, *world.secrets(), console["value"])


def paused_run(ansible, services: Services, world: World, flag: str, **extra_vars: t.Any) -> Run:
    """A run held (by the kill_at callback) after its plan, just before it takes the lease, until ``flag`` exists."""
    env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED="record_results,kill_at", APIKEYS_PAUSE_AT="name:Lease | take the lease",
               APIKEYS_PAUSE_UNTIL=flag)
    run = Run(ansible, ROTATE, inventory([world]), env, extra_vars=extra_vars or None)
    wait_for(lambda: any(r.get("paused") for r in run.kill_records()) or run.proc.poll() is not None, 180, "the run to pause")
    assert run.proc.poll() is None, run.output[-3000:]
    return run


def test_run_that_planned_before_another_finished_reports_already_rotated(openbao, emulator, ansible, kv_path, tmp_path):
    services = Services(openbao, emulator)
    world = World(services, "openai", "late", kv_path)
    flag = str(tmp_path / "go")
    late = paused_run(ansible, services, world, flag, rotate_force=True)
    try:
        first = Run(ansible, ROTATE, inventory([world]), services.env)
        assert first.wait() == 0, first.output[-4000:]
    finally:
        with open(flag, "w", encoding="utf-8") as handle:
            handle.write("go")
    assert late.wait() == 0, late.output[-4000:]
    assert outcome(late, world.host) == "already rotated", text(late)[-3000:]
    assert recap(late.output)[world.host]["changed"] == 0
    assert world.problems() == [], world.problems()
    assert len(world.keys()) == 2, "the late run made no key: %s" % world.keys()
    assert_no_secret(first.output + late.output, *world.secrets())


def test_run_that_planned_before_a_manual_write_stops(openbao, emulator, ansible, kv_path, tmp_path):
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "manual", kv_path)
    flag = str(tmp_path / "go")
    late = paused_run(ansible, services, world, flag)
    try:
        # Meanwhile a person makes a key and writes it to Vault by hand.
        theirs = services.emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "rotated-by-hand"})
        world.kv.create_or_update_secret(path=world.path, secret={"api_key": theirs["value"]}, mount_point="secret")
        record = world.record()
    finally:
        with open(flag, "w", encoding="utf-8") as handle:
            handle.write("go")
    assert late.wait() != 0
    assert "another run or person changed the secret while this run started; this run changed nothing" in text(late), text(late)[-3000:]
    assert world.record() == record and world.value() == theirs["value"] and world.metadata()["current_version"] == 2
    assert [(k["id"], k["status"]) for k in world.keys()] == [(world.old["id"], "active")], "the run made nothing, revoked nothing"
    assert world.lease()["state"] == "released"
    assert_no_secret(late.output, *world.secrets(), theirs["value"])


@pytest.mark.parametrize("ttl, steps", [("15m", ["taken", "released"]), ("1s", ["taken", "store", "retire", "released"])],
                         ids=["renewals-skipped", "renewals-written"])
def test_lease_is_renewed_only_when_a_third_of_its_ttl_has_passed(ttl, steps, openbao, emulator, ansible, kv_path):
    """A lease this run wrote less than a third of the TTL ago cannot have expired: no renewal write then."""
    services = Services(openbao, emulator)
    # Probes 0.4 s apart, more than a third of the short TTL, and the new key's first probe refused: a third of
    # the TTL passes before the store (pre-verify waits once) and before retire (verify's confirming probes wait
    # once between them), however fast the tasks around them run.
    world = World(services, "openrouter", "renewals", kv_path, rotate_lease_ttl=ttl, rotate_probe_delay=0.4,
                  rotate_verify_successes=3)
    services.emulator.control("POST", "faults", {"provider": "openrouter", "method": "GET", "path": "^/key$",
                                                 "status": 401, "count": 1})
    run = Run(ansible, ROTATE, inventory([world]), services.env, extra_vars={"rotate_force": True})
    assert run.wait() == 0, run.output[-4000:]
    assert world.problems() == [], world.problems()
    meta = world.kv.read_secret_metadata(path=world.lock_path, mount_point="secret")["data"]
    versions = []
    for version in range(1, int(meta["current_version"]) + 1):
        read = world.kv.read_secret_version(path=world.lock_path, version=version, mount_point="secret", raise_on_deleted_version=True)
        versions.append(read["data"]["data"])
    seen = [v["state"] if v["state"] == "released" else v.get("step") or "taken" for v in versions]
    assert seen == steps, versions
    assert len({v["owner"] for v in versions}) == 1
    held = [v for v in versions if v["state"] == "held"]
    # Each write's expiry is its own time plus the TTL, never an earlier write's.
    assert [int(v["expires_epoch"]) for v in held] == sorted(int(v["expires_epoch"]) for v in held)
    assert_no_secret(run.output, *world.secrets())
