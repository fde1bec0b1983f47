# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash anywhere: SIGKILL ansible-playbook during a rotation, then ONE re-run must finish it.

Kill points, mostly for the three providers at once (one inventory host per provider, so one
killed run covers the same point for all three):

* task boundaries: the test-only callback ``kill_at`` SIGKILLs the run as the Nth task
  starts (``task:N``). A first full run lists the tasks. Every boundary that follows a task
  writing to Vault or a provider is tried for the three providers; of the others (after
  read-only tasks, which leave the same state as the boundary before them) 1 in 5, at an
  offset that moves with the seed, each for one provider in turn. ``APIKEYS_CRASH_FULL=1``
  tries every boundary for the three providers;
* inside tasks: the Nth runner start plus a random delay (``runner:N:SECONDS``), on tasks
  that run a module of the collection;
* random moments: a timer started with the playbook (``time:SECONDS``), at a random fraction
  of the duration of a full run.

Kills take the whole tree (ansible-playbook's process group and each worker's, as when the
controller dies) or, chosen at random for the last two kinds, only ansible-playbook's process
group (a worker busy with a module finishes it and its answer is lost). After the kills, one
re-run (no kill) of all the killed keys must leave each key rotated exactly once, with nothing
lost and no orphan (``World.problems``). Random choices are seeded: the seed (default: the
date) is printed, ``APIKEYS_CRASH_SEED`` replays it. The tables are printed (``-rP``).
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import resource
import subprocess
import time
import typing as t
import uuid

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation
from harness import AnsibleEnv, assert_no_secret, wait_for
from rotation_world import GONE, PROVIDERS, ROTATE, Run, Services, World, failures, fp, inventory, reap, recap

FULL = os.environ.get("APIKEYS_CRASH_FULL", "") == "1"
SEED = int(os.environ.get("APIKEYS_CRASH_SEED") or time.strftime("%Y%m%d"))
# Ten minutes: a killed run's lease is taken over at once because its holder is provably
# dead (same controller and boot, its process gone), not because it expired.
LEASE_TTL = "10m"
BOUNDARY_CHUNKS = 4
INSIDE = 30 if FULL else 4
RANDOM = 24 if FULL else 4
# Boundaries right after a task that wrote to Vault or a provider leave distinct states; the
# others (after read-only tasks) are sampled 1 in OTHERS_EVERY, at an offset that moves with the seed.
# The task of each stage of a rotation that writes (the boundaries around them matter most).
STAGE_WRITERS = ("Create | create the new key at the provider", "Store | write the new key to Vault with check-and-set",
                 "Verify | record that the new key is proven", "Retire | revoke the previous key",
                 "Done | close the rotation record", "Lease | release the lease")
WRITERS = ("apikeys.rotation.vault_secret_write", "apikeys.rotation.provider_key_create", "apikeys.rotation.provider_key_revoke")
OTHERS_EVERY = 1 if FULL else 5
KILL_CALLBACKS = "record_results,kill_at"
# Cheaper runs, same behaviour: modules through stdin, one probe proves a key.
RUN_ENV = {"ANSIBLE_PIPELINING": "1"}
HOSTVARS = {"rotate_lease_ttl": LEASE_TTL, "rotate_verify_successes": 1}


class Point(t.NamedTuple):
    label: str  # host-name-safe, unique within a test
    kind: str  # boundary | inside | random
    spec: str  # APIKEYS_KILL_AT
    mode: str  # tree | group
    providers: t.Tuple[str, ...] = PROVIDERS  # one key (inventory host) per provider in the killed run


class Plan(t.NamedTuple):
    tasks: t.List[str]  # task names of a full run, in order (task:N kills before tasks[N-1])
    runners: t.List[dict]  # runner starts of a full run: {"n", "task", "host", "task_n"}
    module_tasks: t.List[str]  # tasks that run a module of the collection (Vault or provider calls)
    writer_tasks: t.List[str]  # tasks that run a module that writes to Vault or a provider
    seconds: float  # duration of a full run, from the playbook's start to its end (what a time:SECONDS timer counts)
    # the task names of a full run of each provider's key alone, in order: a step the role includes
    # only for some keys (Anthropic's Console key) is a task of a run only where such a key is in it
    provider_tasks: t.Dict[str, t.List[str]]


def make_plan(openbao, emulator_server, collections_path, workdir: str) -> Plan:
    """One full rotation (no kill) of three keys, logged by kill_at: the task boundaries to kill at."""
    emulator_server.control("POST", "reset")
    ansible = AnsibleEnv(workdir, collections_path)
    services = Services(openbao, emulator_server)
    # A first run compiles the collection's Python files (a clean clone has no __pycache__):
    # the timed run below is then as fast as the killed runs, whose random timers are
    # fractions of its duration.
    warm = World(services, "openrouter", "warm-up", "crash/warm-%s" % uuid.uuid4().hex[:8], **HOSTVARS)
    warm_up = Run(ansible, ROTATE, inventory([warm]), dict(services.env, **RUN_ENV))
    assert warm_up.wait() == 0, warm_up.output[-6000:]
    worlds = [World(services, p, "plan-" + p, "crash/plan-%s" % uuid.uuid4().hex[:8], **HOSTVARS) for p in PROVIDERS]
    run = Run(ansible, ROTATE, inventory(worlds), dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, **RUN_ENV))
    assert run.wait() == 0, run.output[-6000:]
    for world in worlds:
        assert world.problems() == [], (world.host, world.problems())
    records = run.kill_records()
    tasks = [r["task"] for r in records if r.get("kind") == "task"]
    runners = []
    task_n = 0
    for index, record in enumerate(records):
        if record.get("kind") == "runner":
            # how long until the next task starts (or the play ends): about how long this task took on its host
            later = [r["at"] for r in records[index + 1:] if r.get("kind") in ("task", "end") and "at" in r]
            runners.append(dict(record, task_n=task_n, seconds=round(later[0] - record["at"], 4) if later and "at" in record else 0.7))
        elif record.get("kind") == "task":
            task_n = record["n"]
    events = run.events()
    module_tasks = sorted({e["task"] for e in events if str(e.get("action", "")).startswith("apikeys.rotation.")})
    writer_tasks = sorted({e["task"] for e in events if e.get("action") in WRITERS})
    # the full run's boundaries include every stage's writing task (a run that stopped early would not)
    staged = {"apikeys.rotation.rotate : " + name for name in STAGE_WRITERS}
    assert staged <= set(tasks) and writer_tasks, (sorted(staged - set(tasks)), tasks)
    provider_tasks = {}
    for provider in PROVIDERS:
        alone = World(services, provider, "plan-alone-" + provider, "crash/plan-%s" % uuid.uuid4().hex[:8], **HOSTVARS)
        single = Run(ansible, ROTATE, inventory([alone]), dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, **RUN_ENV))
        assert single.wait() == 0, single.output[-6000:]
        provider_tasks[provider] = [r["task"] for r in single.kill_records() if r.get("kind") == "task"]
    return Plan(tasks, runners, module_tasks, writer_tasks, run.play_seconds(), provider_tasks)


def alone_at(plan: Plan, n: int, provider: str) -> t.Optional[int]:
    """The boundary of a run of ``provider``'s key alone that is boundary ``n`` of the full run (the same
    occurrence of the same task), None where that task is not one of such a run."""
    name = plan.tasks[n - 1]
    occurrence = plan.tasks[:n].count(name)
    own = plan.provider_tasks[provider]
    found = [index for index, task in enumerate(own, 1) if task == name]
    return found[occurrence - 1] if len(found) >= occurrence else None


@pytest.fixture(scope="module")
def plan(openbao, emulator_server, collections_path, tmp_path_factory) -> Plan:
    """The plan, made once for the whole session (xdist workers share it through a file)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    shared = str(tmp_path_factory.getbasetemp().parent if run_id else tmp_path_factory.getbasetemp())
    path = os.path.join(shared, "apikeys-crash-plan-%s.json" % (run_id or "local"))
    with open(path + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                made = Plan(**json.load(handle))
        else:
            made = make_plan(openbao, emulator_server, collections_path, str(tmp_path_factory.mktemp("crash-plan")))
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(made._asdict(), handle)
    print("crash plan: seed %d%s, %d tasks (%d write), %d runner starts, full run %.1fs"
          % (SEED, " (full)" if FULL else "", len(made.tasks), len(made.writer_tasks), len(made.runners), made.seconds))
    return made


def boundary_points(plan: Plan, chunk: int) -> t.List[Point]:
    """Every boundary after a write (and the first) for the three providers; 1 in OTHERS_EVERY of the rest, each for
    one provider in turn (with APIKEYS_CRASH_FULL=1: every boundary for the three providers)."""
    chosen = []
    for n in range(1, len(plan.tasks) + 1):
        if FULL or n == 1 or plan.tasks[n - 2] in plan.writer_tasks:
            chosen.append(Point("t%02d" % n, "boundary", "task:%d" % n, "tree"))
        elif n % OTHERS_EVERY == SEED % OTHERS_EVERY:
            # one provider's key alone, in turn (a provider whose run has no such task: the next one)
            for turn in range(len(PROVIDERS)):
                provider = PROVIDERS[(n + SEED + turn) % len(PROVIDERS)]
                own = alone_at(plan, n, provider)
                if own is not None:
                    chosen.append(Point("t%02d" % n, "boundary", "task:%d" % own, "tree", (provider,)))
                    break
    # Chunks of about the same cost (keys killed, later boundaries cost more), in boundary order within a chunk.
    chunks: t.List[t.List[Point]] = [[] for _chunk in range(BOUNDARY_CHUNKS)]
    for point in sorted(chosen, key=lambda p: (-len(p.providers), -int(p.spec.split(":")[1]))):
        min(chunks, key=lambda c: (sum(len(p.providers) for p in c), len(c))).append(point)
    return sorted(chunks[chunk], key=lambda p: int(p.spec.split(":")[1]))


def inside_points(plan: Plan, chunk: int, chunks: int) -> t.List[Point]:
    rng = random.Random(SEED * 7 + 1)
    first_runner: t.Dict[int, dict] = {}
    for runner in plan.runners:
        if runner["task"] in plan.module_tasks:
            first_runner.setdefault(runner["task_n"], runner)
    candidates = sorted(first_runner.values(), key=lambda r: r["n"])
    chosen = candidates if FULL and INSIDE >= len(candidates) else sorted(rng.sample(candidates, min(INSIDE, len(candidates))),
                                                                          key=lambda r: r["n"])
    # A delay within the runner's own duration in a full run (modules run in the controller's
    # process now and take tens of milliseconds), so the kill lands inside it, not tasks later.
    points = [Point("m%02d" % i, "inside", "runner:%d:%.3f" % (r["n"], max(0.003, rng.uniform(0.05, 0.9) * r.get("seconds", 0.7))),
                    rng.choice(("tree", "group")))
              for i, r in enumerate(chosen)]
    return points[chunk::chunks]


def random_points(plan: Plan, chunk: int, chunks: int) -> t.List[Point]:
    """A timer at a random fraction of a full run (``time:F`` until the run's duration is known, see kill_run)."""
    rng = random.Random(SEED * 7 + 2)
    points = [Point("r%02d" % i, "random", "fraction:%.4f" % rng.uniform(0.02, 0.95), rng.choice(("tree", "group")))
              for i in range(RANDOM)]
    return points[chunk::chunks]


def kill_run(ansible, services: Services, point: Point, worlds: t.List[World], seconds: float) -> t.Tuple[Run, str]:
    """Run the rotation of ``worlds`` under the kill point; a fraction of a run becomes a timer of ``seconds`` x F."""
    spec = point.spec
    if spec.startswith("fraction:"):
        spec = "time:%.3f" % (float(spec.split(":")[1]) * seconds)
    env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, APIKEYS_KILL_AT=spec, APIKEYS_KILL_MODE=point.mode, **RUN_ENV)
    run = Run(ansible, ROTATE, inventory(worlds), env)
    run.wait()
    return run, spec


def crash_and_resume(points: t.Sequence[Point], openbao, emulator, ansible, kv_path: str, plan_seconds: float) -> t.List[dict]:
    """Kill one run per point (three keys each), then one re-run of every key; returns a row per key."""
    cpu_before = child_cpu()
    services = Services(openbao, emulator)
    rows: t.List[dict] = []
    worlds: t.List[World] = []
    outputs: t.List[str] = []
    seconds = plan_seconds
    for point in points:
        for attempt in (1, 2):
            point_worlds = [World(services, p, "%s%s-%s" % (point.label, "" if attempt == 1 else "b", p), kv_path, **HOSTVARS)
                            for p in point.providers]
            run, spec = kill_run(ansible, services, point, point_worlds, seconds)
            kills = [r for r in run.kill_records() if r.get("kill")]
            if kills or not point.spec.startswith(("fraction:", "runner:")) or attempt == 2:
                break
            if point.spec.startswith("fraction:"):
                # The run ended before the timer (this run was faster than the plan's): the same fraction of nine
                # tenths of this run's duration, so a second run a little faster again is still killed.
                seconds = 0.9 * min(seconds, run.play_seconds())
            else:
                # The run ended before the delay after its last runners: the same runner, a quarter of the delay.
                _kind, number, delay = point.spec.split(":")
                point = point._replace(spec="runner:%s:%.3f" % (number, float(delay) / 4))
        worlds += point_worlds
        outputs.append(run.output)
        stuck = reap(kills[0]["survivors"]) if kills else []
        for world in point_worlds:
            rows.append(dict(world.snapshot(), world=world, point=point._replace(spec=spec), killed=bool(kills), rc=run.proc.returncode,
                             stuck=stuck, during=kills[0]["during"] if kills else "(run finished: %s)" % run.proc.returncode))
    # The lease of a killed run is still valid (LEASE_TTL); the re-run takes it over, its holder being dead.
    rerun = Run(ansible, ROTATE, inventory(worlds), dict(services.env, **RUN_ENV))
    rerun.wait(timeout=900)
    counters = recap(rerun.output)
    events = rerun.events()
    for row in rows:
        world = row["world"]
        host_failed = counters.get(world.host, {}).get("failed", 1) != 0
        row["rerun_failed"] = failures(events, world.host) if host_failed else []
        if host_failed and not row["rerun_failed"]:
            row["rerun_failed"] = ["no recap for %s" % world.host]
        row["problems"] = row["rerun_failed"] + world.problems()
        if row["stuck"]:
            row["problems"].append("workers still running 30 s after the kill: %s" % row["stuck"])
        assert_no_secret("".join(outputs) + rerun.output, *world.secrets())
    rows[0]["rerun_seconds"] = rerun.seconds
    rows[0]["cpu_seconds"] = child_cpu() - cpu_before
    return rows


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(title: str, rows: t.List[dict]) -> str:
    lines = ["%s (seed %d%s): %d kill points, %d keys killed, re-run of them in %.1fs, %.0f CPU-seconds in all"
             % (title, SEED, ", full" if FULL else "", len({row["point"].label for row in rows}), len(rows), rows[0]["rerun_seconds"],
                rows[0]["cpu_seconds"]),
             "%-8s %-10s %-22s %-5s %-44s %-9s %-4s %-8s %-8s %s"
             % ("point", "provider", "kill", "mode", "killed during", "stage", "ver", "lease", "unstored", "after one re-run")]
    for row in rows:
        point = row["point"]
        lines.append("%-8s %-10s %-22s %-5s %-44s %-9s %-4s %-8s %-8s %s" % (
            point.label, row["world"].provider, point.spec, point.mode, (row["during"] or "-").split(" : ")[-1][:44], row["stage"],
            row["version"], row["lease"], row["unstored"], "ok" if not row["problems"] else "; ".join(row["problems"])[:400]))
    totals: t.Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in rows:
        counter = totals[row["world"].provider]
        counter["tried"] += 1
        counter["killed"] += int(row["killed"])
        counter["ok"] += int(not row["problems"])
        counter["stage " + row["stage"]] += 1
    for provider in PROVIDERS:
        lines.append("%s: %s" % (provider, dict(sorted(totals[provider].items()))))
    text = "\n".join(lines)
    print(text)
    return text


def check(rows: t.List[dict], text: str) -> None:
    bad = [row for row in rows if row["problems"]]
    assert not bad, "%d of %d keys were not finished correctly by one re-run:\n%s" % (len(bad), len(rows), text)
    assert sum(row["killed"] for row in rows) >= len(rows) * 2 // 3, "most runs must actually be killed:\n" + text


@pytest.mark.parametrize("chunk", range(BOUNDARY_CHUNKS))
def test_crash_at_every_task_boundary(chunk, plan, openbao, emulator, ansible, kv_path):
    points = boundary_points(plan, chunk)
    rows = crash_and_resume(points, openbao, emulator, ansible, kv_path, plan.seconds)
    text = report("task boundaries, chunk %d of %d" % (chunk + 1, BOUNDARY_CHUNKS), rows)
    assert all(row["killed"] for row in rows), "every boundary of a full run is reached:\n" + text
    check(rows, text)


@pytest.mark.parametrize("chunk", range(2))
def test_crash_inside_tasks(chunk, plan, openbao, emulator, ansible, kv_path):
    rows = crash_and_resume(inside_points(plan, chunk, 2), openbao, emulator, ansible, kv_path, plan.seconds)
    check(rows, report("inside tasks, chunk %d of 2" % (chunk + 1), rows))


@pytest.mark.parametrize("chunk", range(2))
def test_crash_at_random_moments(chunk, plan, openbao, emulator, ansible, kv_path):
    rows = crash_and_resume(random_points(plan, chunk, 2), openbao, emulator, ansible, kv_path, plan.seconds)
    check(rows, report("random moments, chunk %d of 2" % (chunk + 1), rows))


# -- rollback: a run that died between its Vault write and its record, a dead run's lease --

ROLLBACK = "apikeys.rotation.rollback"


@pytest.mark.parametrize("provider", ["openai", "openrouter"])
def test_rollback_killed_between_its_write_and_its_record(provider, openbao, emulator, ansible, kv_path):
    """The re-run completes the record from the version below the newest, not from the newest."""
    services = Services(openbao, emulator)
    world = World(services, provider, "halfway-" + provider, kv_path, **HOSTVARS)
    run = Run(ansible, ROTATE, inventory([world]), dict(services.env, **RUN_ENV))
    assert run.wait() == 0, run.output
    rotated = world.record()
    new_fp, old_fp = rotated["fingerprint"], fp(world.old["value"])
    assert world.history() == {1: old_fp, 2: new_fp}
    # What "Rollback | write the previous version back as the newest" does first, with
    # check-and-set against the newest version; the run dies before the record is written.
    world.kv.create_or_update_secret(path=world.path, secret={"api_key": world.old["value"]}, cas=2, mount_point="secret")
    # ... while it held the lease: ten more minutes on it, but its holder's process is gone,
    # so the rollback takes it over at once (without that proof it would be refused).
    dead = subprocess.Popen(["sleep", "0"])  # pylint: disable=consider-using-with
    dead_start = rotation.process_start(dead.pid) or "1"
    dead.wait()
    here = rotation.Holder.here()
    world.kv.create_or_update_secret(path=world.lock_path, mount_point="secret", secret={
        "state": "held", "owner": "dead-run", "host": world.host, "expires_epoch": str(int(time.time() + 600)),
        "expires_at": "in ten minutes", "controller": here.controller, "boot_id": here.boot_id,
        "pid": str(dead.pid), "pid_start": dead_start})
    rerun = Run(ansible, ROLLBACK, inventory([world]), dict(services.env, **RUN_ENV), extra_vars={"rotate_hosts": "all"})
    assert rerun.wait() == 0, rerun.output
    record = world.record()
    assert world.history() == {1: old_fp, 2: new_fp, 3: old_fp}, "no version is written twice"
    assert {k: record.get(k) for k in ("key_id", "fingerprint", "previous_key_id", "previous_fingerprint",
                                       "previous_version", "rolled_back_from")} == {
        "key_id": world.old["id"], "fingerprint": old_fp, "previous_key_id": rotated["key_id"],
        "previous_fingerprint": new_fp, "previous_version": "2", "rolled_back_from": rotated["key_id"]}
    lease = world.lease()
    assert lease["state"] == "released", lease
    assert_no_secret(run.output + rerun.output, *world.secrets())


# -- rollback and cleanup, killed at their task boundaries ------------------------------

CLEANUP = "apikeys.rotation.cleanup"
AFTER = {"rollback": ROLLBACK, "cleanup": CLEANUP}
AFTER_VARS = {"rollback": {}, "cleanup": {"grace_period": "0s"}}
AFTER_EXTRA = {"rollback": {"rotate_hosts": "all"}, "cleanup": {}}


def after_problems(name: str, world: World, rotated: dict) -> t.List[str]:
    """What is wrong with a key once its rollback or cleanup finished (empty when all is well)."""
    found: t.List[str] = []
    old_fp, new_fp = fp(world.old["value"]), rotated["fingerprint"]
    history, record = world.history(), world.record()
    by_id = {k["id"]: k for k in world.keys()}
    new, old = by_id.get(rotated["key_id"]) or {}, by_id.get(world.old["id"]) or {}
    if name == "rollback":
        expected_history = {1: old_fp, 2: new_fp, 3: old_fp}
        expected = {"key_id": world.old["id"], "fingerprint": old_fp, "previous_key_id": rotated["key_id"],
                    "previous_fingerprint": new_fp, "previous_version": "2", "rolled_back_from": rotated["key_id"]}
        if old.get("status") != "active" or new.get("status") != "active":
            found.append("after a rollback both keys are active: old %s, new %s" % (old.get("status"), new.get("status")))
        if not world.authenticates(world.value()):
            found.append("Vault's newest key does not authenticate")
    else:
        expected_history = {1: old_fp, 2: new_fp}
        expected = {"key_id": rotated["key_id"], "fingerprint": new_fp, "previous_key_id": world.old["id"],
                    "previous_state": "deleted"}
        if old.get("status") not in GONE:
            found.append("the previous key is %s after cleanup, expected deleted" % old.get("status"))
        if new.get("status") != "active" or not world.authenticates(world.value()):
            found.append("the key in use is %s after cleanup or does not authenticate" % new.get("status"))
    if history != expected_history:
        found.append("Vault's versions are %s, expected %s" % (history, expected_history))
    wrong = {k: record.get(k) for k, v in expected.items() if record.get(k) != v}
    if wrong:
        found.append("the record is wrong: %s (expected %s)" % (wrong, {k: expected[k] for k in wrong}))
    if record.get("stage"):
        found.append("the record still says stage=%s" % record["stage"])
    lease = world.lease() or {}
    if lease.get("state") == "held" and float(lease.get("expires_epoch") or 0) > time.time():
        found.append("the lease is still held by %s until %s" % (lease.get("owner"), lease.get("expires_at")))
    return found


def rotated_worlds(ansible, services: Services, labels: t.Sequence[str], kv_path: str, name: str,
                   providers: t.Optional[t.Mapping[int, t.Sequence[str]]] = None) -> t.List[World]:
    """Keys for each label (one per provider, or those of ``providers``), rotated in one run: what a rollback or cleanup starts from."""
    chosen = list(providers.values()) if providers else [PROVIDERS] * len(labels)
    worlds = [World(services, p, "%s-%s" % (label, p), kv_path, **dict(HOSTVARS, **AFTER_VARS[name]))
              for label, label_providers in zip(labels, chosen) for p in label_providers]
    run = Run(ansible, ROTATE, inventory(worlds), dict(services.env, **RUN_ENV))
    assert run.wait(timeout=900) == 0, run.output[-6000:]
    return worlds


@pytest.mark.parametrize("name", sorted(AFTER))
def test_rollback_and_cleanup_killed_at_every_boundary(name, openbao, emulator, ansible, kv_path):
    """Killed as any task after a write starts (and 1 in OTHERS_EVERY of the others), one re-run finishes the job."""
    services = Services(openbao, emulator)
    playbook = AFTER[name]
    plan_worlds = rotated_worlds(ansible, services, ["%s-plan" % name[:2]], kv_path, name)
    rotated = {w.host: w.record() for w in plan_worlds}
    full = Run(ansible, playbook, inventory(plan_worlds), dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, **RUN_ENV),
               extra_vars=AFTER_EXTRA[name])
    assert full.wait() == 0, full.output[-6000:]
    assert {w.host: after_problems(name, w, rotated[w.host]) for w in plan_worlds} == {w.host: [] for w in plan_worlds}
    tasks = [r["task"] for r in full.kill_records() if r.get("kind") == "task"]
    writers = {e["task"] for e in full.events() if e.get("action") in WRITERS}
    assert writers and len(tasks) > 10, tasks
    # after a write (and the first): the three providers; 1 in OTHERS_EVERY of the others: one provider in turn
    points = {n: PROVIDERS if FULL or n == 1 or tasks[n - 2] in writers else (PROVIDERS[(n + SEED) % len(PROVIDERS)],)
              for n in range(1, len(tasks) + 1)
              if FULL or n == 1 or tasks[n - 2] in writers or n % OTHERS_EVERY == SEED % OTHERS_EVERY}
    labels = ["%s%02d" % (name[:2], n) for n in points]
    worlds = rotated_worlds(ansible, services, labels, kv_path, name, points)
    rotated = {w.host: w.record() for w in worlds}
    rows = []
    for n, label in zip(points, labels):
        point_worlds = [w for w in worlds if w.host.startswith(label + "-")]
        env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, APIKEYS_KILL_AT="task:%d" % n, APIKEYS_KILL_MODE="tree",
                   **RUN_ENV)
        run = Run(ansible, playbook, inventory(point_worlds), env, extra_vars=AFTER_EXTRA[name])
        run.wait()
        kills = [r for r in run.kill_records() if r.get("kill")]
        assert kills, "task %d of %s is reached: %s" % (n, name, run.output[-3000:])
        reap(kills[0]["survivors"])
        rows += [(n, tasks[n - 1], w) for w in point_worlds]
        assert_no_secret(run.output, *[s for w in point_worlds for s in w.secrets()])
    # one re-run of every killed key; the killed runs' leases (ten more minutes each) are taken over at once
    rerun = Run(ansible, playbook, inventory(worlds), dict(services.env, **RUN_ENV), extra_vars=AFTER_EXTRA[name])
    rerun.wait(timeout=900)
    counters = recap(rerun.output)
    lines = ["%s killed at %d boundaries (%d keys), re-run in %.1fs" % (name, len(points), len(rows), rerun.seconds)]
    bad = 0
    for n, task, world in rows:
        problems = after_problems(name, world, rotated[world.host])
        if counters.get(world.host, {}).get("failed", 1) != 0:
            problems = (failures(rerun.events(), world.host) or ["no recap"]) + problems
        bad += bool(problems)
        lines.append("task:%-3d %-10s %-58s %s" % (n, world.provider, task.split(" : ")[-1][:58],
                                                   "ok" if not problems else "; ".join(problems)[:400]))
    text = "\n".join(lines)
    print(text)
    assert not bad, text
    assert_no_secret(rerun.output, *[s for w in worlds for s in w.secrets()])


# -- a rotation left unfinished by the role before these decisions moved to Python ----------

# The last commit before the in-process modules, the Python decisions and the lease's holder
# identity; its record and lease formats are what a deployed role left in Vault.
BEFORE = "ddb01ad"


def collection_at(commit: str, root: str) -> t.Optional[str]:
    """The collection as it was at ``commit``, unpacked under ``root``; None without the history (a shallow clone)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.path.join(root, "ansible_collections", "apikeys", "rotation")
    os.makedirs(target)
    archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", commit, "galaxy.yml", "meta", "plugins", "roles",
                              "playbooks"], capture_output=True, check=False)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return root


@pytest.mark.parametrize("kill_at,stage", [("Create | record the new key's id and fingerprint", "creating"),
                                           ("Deploy the new key", "stored")])
def test_a_rotation_left_by_the_previous_role_is_finished(kill_at, stage, openbao, emulator, ansible, kv_path, tmp_path):
    """Killed under the previous role (its modules executed as modules, its lease without holder identity), finished by this one."""
    old_root = collection_at(BEFORE, str(tmp_path / "before"))
    if old_root is None:
        pytest.skip("the repository's history is not here (shallow clone): cannot unpack %s" % BEFORE)
    assert not os.path.exists(os.path.join(old_root, "ansible_collections", "apikeys", "rotation", "plugins", "action")), \
        "the previous role executes its modules as modules"
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "before-" + stage, kv_path, rotate_lease_ttl="2s", rotate_verify_successes=1)
    env = dict(services.env, ANSIBLE_COLLECTIONS_PATH=old_root, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS,
               APIKEYS_KILL_AT="name:" + kill_at, **RUN_ENV)
    killed = Run(ansible, ROTATE, inventory([world]), env)
    killed.wait()
    assert [r for r in killed.kill_records() if r.get("kill")], killed.output[-3000:]
    assert world.record().get("stage") == stage, world.record()
    lease = world.lease()
    assert lease["state"] == "held" and "controller" not in lease, "the previous role's lease names no holder: %s" % lease
    # Nothing proves that lease's holder dead: it is taken over once it expires.
    wait_for(lambda: time.time() > float(lease["expires_epoch"]) + 0.2, 60, "the previous role's lease to expire")
    rerun = Run(ansible, ROTATE, inventory([world]), dict(services.env, **RUN_ENV))
    assert rerun.wait() == 0, rerun.output[-4000:]
    assert '"taken_over_from": "%s"' % lease["owner"] in rerun.output
    assert world.problems() == [], world.problems()
    assert_no_secret(killed.output + rerun.output, *world.secrets())


# -- the deploy target: killed while it delivers, or right after ---------------------------

@pytest.mark.parametrize("kill_at", ["Deploy | write the key to the Cloudflare Worker secret",
                                     "Verify | probe the active key at the provider until it is live"])
@pytest.mark.parametrize("provider", ["anthropic", "openrouter"])
def test_killed_during_the_cloudflare_deploy_target_rerun_delivers_once(kill_at, provider, openbao, emulator, ansible,
                                                                        kv_path):
    """A run killed inside the Worker-secret delivery (or just after it) is finished by one re-run: the Worker
    serves the key Vault holds, one new key was made, the old one retired after the Worker reported the new one."""
    services = Services(openbao, emulator)
    world = World(services, provider, "cf-" + provider, kv_path, rotate_lease_ttl="2s")
    worker = emulator.worker("crash-" + provider, provider, world.old["value"])
    world.hostvars.update(deploy_target="cloudflare_worker_secret", cloudflare_account_id=worker["account_id"],
                          cloudflare_script_name=worker["script"], cloudflare_api_base_url=emulator.base_url("cloudflare"),
                          health_url=worker["health_url"])
    world.hostvars.pop("allow_without_deploy", None)
    cf_env = {"CLOUDFLARE_API_TOKEN": worker["api_token"]}
    env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, APIKEYS_KILL_AT="name:" + kill_at, **RUN_ENV, **cf_env)
    killed = Run(ansible, ROTATE, inventory([world]), env)
    killed.wait()
    assert [r for r in killed.kill_records() if r.get("kill")], killed.output[-3000:]
    assert world.record().get("stage") == "stored", world.record()
    rerun = Run(ansible, ROTATE, inventory([world]), dict(services.env, **RUN_ENV, **cf_env))
    assert rerun.wait() == 0, rerun.output[-4000:]
    assert world.problems() == [], world.problems()
    state = emulator.worker_state(worker["script"])
    newest = fp(world.value())
    assert state["secrets"][0]["fingerprint"] == newest == state["serving_fingerprint"]
    # created with the old key; the killed run's write (if it got that far) and the re-run's: the same key
    assert 2 <= state["puts"] <= 3, state
    assert state["requests"]["failed"] == 0
    assert_no_secret(killed.output + rerun.output, *(world.secrets() + [worker["api_token"]]))


@pytest.mark.parametrize("kill_at", ["Deploy | write the key to the file", "Deploy | run the reload command"])
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_killed_during_the_file_deploy_target_rerun_delivers_once(kill_at, provider, openbao, emulator, ansible, kv_path,
                                                                  tmp_path):
    """A run killed as it writes the key file (or before the reload) is finished by one re-run: the file holds the
    key Vault holds, the application reloaded it and serves it, one new key was made, the old one retired."""
    from test_deploy_targets import FileApp

    services = Services(openbao, emulator)
    world = World(services, provider, "file-" + provider, kv_path, rotate_lease_ttl="2s")
    app = FileApp(provider, world.old["value"], emulator.base_url(provider), tmp_path)
    try:
        world.hostvars.update(deploy_target="file", key_file_path=str(app.key_file), health_url=app.url,
                              key_file_reload_command="kill -HUP %d" % app.proc.pid)
        world.hostvars.pop("allow_without_deploy", None)
        env = dict(services.env, ANSIBLE_CALLBACKS_ENABLED=KILL_CALLBACKS, APIKEYS_KILL_AT="name:" + kill_at, **RUN_ENV)
        killed = Run(ansible, ROTATE, inventory([world]), env)
        killed.wait()
        assert [r for r in killed.kill_records() if r.get("kill")], killed.output[-3000:]
        assert world.record().get("stage") == "stored", world.record()
        assert app.reported()["fingerprint"] == fp(world.old["value"]), "killed before the reload"
        rerun = Run(ansible, ROTATE, inventory([world]), dict(services.env, **RUN_ENV))
        assert rerun.wait() == 0, rerun.output[-4000:]
        assert world.problems() == [], world.problems()
        newest = world.value()
        assert app.key_file.read_text() == newest
        assert app.reported() == {"live": True, "fingerprint": fp(newest)}
        assert os.listdir(str(app.directory)) == [app.key_file.name]
    finally:
        output = app.stop()
    assert_no_secret(killed.output + rerun.output + output, *world.secrets())
