# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotate role's decisions, as small pure functions a unit test can reach.

The role's tasks read Vault and the provider, hand what they read to these functions
(through the filters in plugins/filter/), and do what the answer says. Nothing here
reads or writes anything except :func:`controller_process` and :func:`process_alive`,
which look at /proc of the controller the run is on.

- :func:`plan_start`: what the plan reads from the secret: the record, the key in use, its age,
  why it is due, and (:func:`resume_from`) where the run starts.
- :func:`plan_keys`, :func:`rotation_identity`: the keys and the rotation a run works with.
- :func:`lease_decision`: whether a run may take a key's lease (free, expired, broken,
  held by a run that is provably dead, or held); :func:`under_lease`: whether the plan
  still stands once the lease is held.
- :func:`plan_rollback`: what a rollback writes, including the re-run of a rollback that
  died between its Vault write and its record.
"""

from __future__ import annotations

import datetime
import os
import random
import socket
import time
import typing as t
from dataclasses import asdict, dataclass


class DecisionError(Exception):
    """What was read cannot be acted on safely; the message says why and what to do."""


# -- where a rotation resumes ------------------------------------------------------------

RESUME_POINTS = ("none", "create", "recover", "conflict", "superseded", "deploy", "retire", "unknown")


def resume_from(due: bool, stage: str, current_fingerprint: str, record: t.Mapping[str, t.Any]) -> str:
    """Where a rotation run starts.

    ``stage`` is the record's stage ("" when no rotation is under way), ``current_fingerprint``
    the fingerprint of the key Vault's newest version holds.

    - none: nothing is due.
    - create: a new rotation, or one whose create never reached Vault (Vault still serves
      the record's key).
    - recover: the key of an interrupted create is already in Vault: the record catches up.
    - conflict: stage creating, and Vault serves a key the record names nowhere.
    - superseded: stored/verified, but Vault serves another key than the record's.
    - deploy / retire: carry on after store / after verify.
    - unknown: a stage this version does not know.
    """
    if not due:
        return "none"
    if not stage:
        return "create"
    if stage == "creating":
        if current_fingerprint and current_fingerprint == record.get("pending_fingerprint", ""):
            return "recover"
        if current_fingerprint == record.get("fingerprint", ""):
            return "create"
        return "conflict"
    if stage in ("stored", "verified"):
        if current_fingerprint != record.get("fingerprint", ""):
            return "superseded"
        return "deploy" if stage == "stored" else "retire"
    return "unknown"


def parse_time(text: t.Any) -> t.Optional[float]:
    """Seconds since the epoch of an ISO 8601 UTC time (Vault's nanoseconds cut), None when it is none."""
    text = str(text or "").strip()
    if len(text) < 19:
        return None
    try:
        moment = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def key_age_since(secret: t.Mapping[str, t.Any]) -> t.Optional[float]:
    """When the key in use started its life: the last rotation, else when its version was written.

    The plan (:func:`plan_start`) and the status view both ask here."""
    record = secret.get("custom_metadata") or {}
    version = str(secret.get("current_version") or "")
    written = ((secret.get("versions") or {}).get(version) or {}).get("created_time")
    return parse_time(record.get("rotated_at")) or parse_time(written) or parse_time(secret.get("created_time"))


def due_reason(stage_found: str, force: bool, age_seconds: int, max_age_seconds: int, max_age: str) -> str:
    """Why the key is rotated now ('' when it is not due)."""
    if stage_found:
        return "resuming the rotation left at stage " + stage_found
    if force:
        return "forced"
    if age_seconds >= max_age_seconds:
        return "older than max_age " + max_age
    return ""


def plan_start(secret: t.Mapping[str, t.Any], force: bool, max_age_seconds: int, max_age: str,
               now: t.Optional[float] = None) -> t.Dict[str, t.Any]:
    """What the plan reads from the secret and where the run starts: the record, the stage it found, the key in
    use, its age and why it is due, and ``resume_from``. ``now``: seconds since the epoch (the current time by
    default)."""
    now = time.time() if now is None else now
    record = dict(secret.get("custom_metadata") or {})
    stage_found = str(record.get("stage") or "")
    current_fingerprint = str((secret.get("fingerprints") or {}).get("api_key") or "")
    since = key_age_since(secret)
    if since is None:
        raise DecisionError("cannot tell the key's age: Vault gave no time it was written")
    age = int(now - since)
    reason = due_reason(stage_found, bool(force), age, int(max_age_seconds), str(max_age))
    return {
        "record": record,
        "stage_found": stage_found,
        "current_version": int(secret.get("current_version") or 0),
        "current_fingerprint": current_fingerprint,
        "age_seconds": age,
        "due_reason": reason,
        "resume_from": resume_from(bool(reason), stage_found, current_fingerprint, record),
    }


def new_rotation_id(now: t.Optional[datetime.datetime] = None) -> t.Tuple[str, str]:
    """A fresh rotation id (the UTC time and 16 random bits) and the time it started."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return ("%s-%04x" % (now.strftime("%Y%m%d%H%M%S"), random.SystemRandom().randrange(0x10000)),
            now.strftime("%Y-%m-%dT%H:%M:%SZ"))


def plan_keys(resume: str, stage_found: str, record: t.Mapping[str, t.Any], current_fingerprint: str,
              current_version: int, current_key_id: str = "") -> t.Dict[str, t.Any]:
    """The keys a run works with: the old one (retired at the end), the new one, and their Vault versions.

    A new rotation (no stage): the old key is the record's when the record's fingerprint is the
    key in Vault (otherwise the key was replaced outside the role, the record is stale, and
    ``current_key_id`` or adoption by hint names it), the base version is the newest.
    Resuming: before store (create, recover, conflict) the old key is the record's own key and
    the new one the pending key; after store (deploy, retire, superseded) the record names the
    new key and ``previous_*`` the old one, whose version the rollback and restore go back to.
    """
    record_key = str(record.get("key_id") or "")
    if not stage_found:
        trusted = bool(record_key) and str(record.get("fingerprint") or current_fingerprint) == current_fingerprint
        return {"old_key_id": record_key if trusted else current_key_id, "old_fingerprint": current_fingerprint,
                "base_version": current_version, "new_key_id": "", "new_fingerprint": "", "new_version": 0}
    before_store = resume in ("create", "recover", "conflict")
    if resume in ("create", "conflict"):
        base = current_version
    elif resume == "recover":
        base = current_version - 1  # the interrupted store wrote the newest version
    else:
        base = int(record.get("previous_version") or 0)
    if resume in ("recover", "conflict"):
        new_id, new_fp = str(record.get("pending_key_id") or ""), str(record.get("pending_fingerprint") or "")
    elif resume in ("deploy", "retire", "superseded"):
        new_id, new_fp = record_key, str(record.get("fingerprint") or "")
    else:
        new_id, new_fp = "", ""
    return {
        "old_key_id": (record_key or current_key_id) if before_store else str(record.get("previous_key_id") or ""),
        "old_fingerprint": str(record.get("fingerprint") or "") if before_store else str(record.get("previous_fingerprint") or ""),
        "base_version": base,
        "new_key_id": new_id,
        "new_fingerprint": new_fp,
        "new_version": current_version if resume in ("recover", "deploy", "retire") else 0,
    }


def rotation_identity(stage_found: str, record: t.Mapping[str, t.Any],
                      now: t.Optional[datetime.datetime] = None) -> t.Dict[str, str]:
    """The rotation a run works on: the unfinished one the record names, else a new one."""
    if stage_found:
        return {"rotation_id": str(record.get("rotation_id") or ""),
                "rotation_started_at": str(record.get("rotation_started_at") or "")}
    rotation_id, started_at = new_rotation_id(now)
    return {"rotation_id": rotation_id, "rotation_started_at": started_at}


PLAN_KEY_FIELDS = ("rotation_id", "rotation_started_at", "old_key_id", "old_fingerprint", "base_version",
                   "new_key_id", "new_fingerprint", "new_version", "stale_key_ids")


def stale_key_ids(record: t.Mapping[str, t.Any], stage_found: str, old_key_id: str, new_key_id: str) -> t.List[str]:
    """Keys two or more rotations back that are not deleted yet, which this rotation deletes once the new key is
    proven: the record's ``stale_key_ids`` and, for a rotation that has not stored its key yet, the previous
    rotation's old key unless it was deleted. Never the old or the new key of this rotation."""
    found = str(record.get("stale_key_ids") or "").split(",")
    if stage_found in ("", "creating") and str(record.get("previous_state") or "") != "deleted":
        found.append(str(record.get("previous_key_id") or ""))
    keep = (key.strip() for key in found)
    return [key for key in dict.fromkeys(keep) if key and key not in (old_key_id, new_key_id)]


def plan(secret: t.Mapping[str, t.Any], force: bool, max_age_seconds: int, max_age: str, current_key_id: str = "",
         where: str = "", now: t.Optional[float] = None) -> t.Dict[str, t.Any]:
    """The plan stage's one decision, from the secret as read: :func:`plan_start`, then, where the run works on
    a rotation, :func:`plan_keys`, :func:`rotation_identity` and :func:`stale_key_ids` (their fields are None
    where it does not).

    ``problem`` is why the run must stop before it writes anything ('' when it may go on): no key at
    ``where`` (the secret's mount/path), or a stage this version does not know. ``now`` (seconds since the
    epoch, the current time by default) dates both the key's age and a new rotation, so that a plan read
    field by field gives one rotation id and start time.
    """
    now = time.time() if now is None else float(now)
    exists = bool(secret.get("exists"))
    if not exists or not (secret.get("fingerprints") or {}).get("api_key"):
        why = "the secret has no api_key field" if exists else "the secret does not exist"
        planned: t.Dict[str, t.Any] = {
            "record": {}, "stage_found": "", "current_version": 0, "current_fingerprint": "", "age_seconds": 0,
            "due_reason": "", "resume_from": "none",
            "problem": "no key at %s (%s): write the key in use there as the field api_key, then rotate it." % (where, why)}
        planned.update(dict.fromkeys(PLAN_KEY_FIELDS))
        return planned
    planned = plan_start(secret, force, max_age_seconds, max_age, now)
    resume, stage = planned["resume_from"], planned["stage_found"]
    planned["problem"] = ("the rotation record at %s has stage=%s, which this role does not know. Nothing was changed."
                          % (where, stage)) if resume == "unknown" else ""
    if resume == "create" or (stage and resume != "unknown"):
        planned.update(plan_keys(resume, stage, planned["record"], planned["current_fingerprint"],
                                 planned["current_version"], current_key_id))
        started = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).replace(tzinfo=None)
        planned.update(rotation_identity(stage, planned["record"], started))
        planned["stale_key_ids"] = stale_key_ids(planned["record"], stage, planned["old_key_id"], planned["new_key_id"])
    else:
        planned.update(dict.fromkeys(PLAN_KEY_FIELDS))
    return planned


def superseded_stale(stale_key_ids: t.Sequence[str], new_key_id: str, old_key_id: str, old_fingerprint: str,
                     served_fingerprint: str) -> t.List[str]:
    """The keys a rotation overtaken by another writer leaves behind for the next rotation to delete: the keys
    already left over, its own new key and its previous key, unless that previous key is the one Vault serves again
    (``served_fingerprint``). Trimmed, once each, in that order, never an empty id."""
    keys = list(stale_key_ids or []) + [new_key_id]
    if old_fingerprint != served_fingerprint:
        keys.append(old_key_id)
    return [key for key in dict.fromkeys(str(k or "").strip() for k in keys) if key]


def plan_stop(problem: str, resume: str, preflight_problems: t.Sequence[str]) -> str:
    """Why the run stops right after the plan, before it writes anything; '' when it goes on.

    The plan's ``problem`` (no key, a stage this version does not know), else, for a run that would change
    something, the settings problems the preflight found (settings.preflight).
    """
    if problem:
        return problem
    if resume not in ("none", "unknown") and preflight_problems:
        return "not started, nothing was changed: %s." % "; ".join(preflight_problems)
    return ""


# -- the lease ----------------------------------------------------------------------------

LEASE_OUTCOMES = ("free", "expired", "broken", "dead_holder", "held")


def _stat_fields(pid: int) -> t.Optional[t.List[str]]:
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat:
            raw = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) is in parentheses and may hold spaces: split after its closing one
    return raw[raw.rfind(")") + 2:].split()


def _cmdline(pid: int) -> bytes:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return b""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            return boot.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The start time of a process in clock ticks since boot ("" when it does not exist)."""
    fields = _stat_fields(pid)
    # after comm: state(3) ppid(4) ... starttime is field 22, i.e. index 19 here
    return fields[19] if fields and len(fields) > 19 else ""


def controller_process(pid: t.Optional[int] = None) -> int:
    """The ansible-playbook process this code runs under.

    Ansible forks a worker for each task from the main process; a worker's command line is
    its parent's. The main process is the topmost of the chain with the same command line.
    """
    pid = os.getpid() if pid is None else pid
    command = _cmdline(pid)
    while True:
        fields = _stat_fields(pid)
        parent = int(fields[1]) if fields and len(fields) > 1 else 0
        if parent <= 1 or not command or _cmdline(parent) != command:
            return pid
        pid = parent


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: enough to prove, on the same controller, that its run is gone."""

    controller: str = ""
    boot_id: str = ""
    pid: str = ""
    pid_start: str = ""

    @classmethod
    def here(cls) -> "Holder":
        pid = controller_process()
        return cls(controller=socket.gethostname(), boot_id=boot_id(), pid=str(pid), pid_start=process_start(pid))

    @classmethod
    def from_lease(cls, data: t.Mapping[str, t.Any]) -> "Holder":
        return cls(**{name: str(data.get(name) or "") for name in ("controller", "boot_id", "pid", "pid_start")})

    def provably_dead(self, here: "Holder", alive: t.Callable[[int, str], bool]) -> bool:
        """True only when the holder ran on this controller since its last boot and its process is gone."""
        if not (self.controller and self.boot_id and self.pid.isdigit() and self.pid_start):
            return False
        if (self.controller, self.boot_id) != (here.controller, here.boot_id) or not here.boot_id:
            return False
        return not alive(int(self.pid), self.pid_start)


def process_alive(pid: int, start: str) -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs (a reused pid is another process)."""
    now_start = process_start(pid)
    return bool(now_start) and now_start == start


@dataclass(frozen=True)
class LeaseDecision:
    outcome: str  # one of LEASE_OUTCOMES
    taken_over_from: str  # the owner whose lease is taken over, "" when it was free
    holder: t.Dict[str, str]  # this run's identity, written into the lease

    @property
    def take(self) -> bool:
        """Whether the run may write the lease (with check-and-set)."""
        return self.outcome != "held"

    def as_dict(self) -> t.Dict[str, t.Any]:
        return dict(asdict(self), take=self.take)


def lease_decision(lease: t.Optional[t.Mapping[str, t.Any]], now: float, break_owner: str = "",
                   here: t.Optional[Holder] = None,
                   alive: t.Callable[[int, str], bool] = process_alive) -> LeaseDecision:
    """May this run take the lease whose data (None when there is none) was just read?

    - free: no lease, or released.
    - expired: held, but past its expires_epoch (the holder died or stalled past the TTL).
    - broken: held, and rotate_lease_break names its owner.
    - dead_holder: held, by a run on this same controller and boot whose process is gone.
    - held: anything else; the run stops and says who holds it.
    """
    here = here or Holder.here()
    data = lease or {}
    owner = str(data.get("owner") or "")
    if data.get("state") != "held":
        return LeaseDecision("free", "", asdict(here))
    try:
        expires = float(data.get("expires_epoch") or 0)
    except (TypeError, ValueError):
        expires = 0.0
    if now >= expires:
        outcome = "expired"
    elif break_owner and break_owner == owner:
        outcome = "broken"
    elif Holder.from_lease(data).provably_dead(here, alive):
        outcome = "dead_holder"
    else:
        return LeaseDecision("held", "", asdict(here))
    return LeaseDecision(outcome, owner, asdict(here))


def dead_lease(lease: t.Optional[t.Mapping[str, t.Any]], here: t.Optional[Holder] = None,
               alive: t.Callable[[int, str], bool] = process_alive) -> bool:
    """A lease still held by a run that is provably dead (a run with nothing to do releases it)."""
    data = lease or {}
    if data.get("state") != "held":
        return False
    return Holder.from_lease(data).provably_dead(here or Holder.here(), alive)


UNDER_LEASE = ("taken", "already_rotated", "changed")


def under_lease(planned: t.Mapping[str, t.Any], now: t.Mapping[str, t.Any]) -> str:
    """What the secret, read again once the lease is held, says about the plan made before it.

    ``taken``: the same version, stage, rotation and key, so the plan stands. ``already_rotated``: another run
    finished a rotation meanwhile (no stage, a new ``rotated_at``). ``changed``: anything else (a person wrote a
    key, another run is half-way): the run stops and changes nothing.
    """
    then_record = planned.get("custom_metadata") or {}
    now_record = now.get("custom_metadata") or {}

    def fingerprint(secret: t.Mapping[str, t.Any]) -> str:
        return str((secret.get("fingerprints") or {}).get("api_key") or "")

    if (int(now.get("current_version") or 0) == int(planned.get("current_version") or 0)
            and all(str(now_record.get(f) or "") == str(then_record.get(f) or "") for f in ("stage", "rotation_id"))
            and fingerprint(now) == fingerprint(planned)):
        return "taken"
    rotated_at = str(now_record.get("rotated_at") or "")
    if not now_record.get("stage") and rotated_at and rotated_at != str(then_record.get("rotated_at") or ""):
        return "already_rotated"
    return "changed"


# -- rollback -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback does. ``state``: fresh, resume (its Vault write landed, its record did not) or done."""

    state: str
    to_key_id: str  # the key Vault serves after the rollback
    to_fingerprint: str
    from_key_id: str  # the key rolled back from (left active)
    from_fingerprint: str
    from_version: int

    def record(self, now_text: str) -> t.Dict[str, t.Optional[str]]:
        """The custom_metadata the rollback writes (merged into the record)."""
        return {
            "stage": None,
            "pending_key_id": None,
            "pending_fingerprint": None,
            "key_id": self.to_key_id,
            "fingerprint": self.to_fingerprint,
            "previous_key_id": self.from_key_id,
            "previous_fingerprint": self.from_fingerprint,
            "previous_version": str(self.from_version),
            "previous_state": "active",
            "rolled_back_from": self.from_key_id or self.from_fingerprint,
            "rolled_back_at": now_text,
            "retired_at": now_text,
        }

    def as_dict(self, now_text: str = "") -> t.Dict[str, t.Any]:
        result = asdict(self)
        result["record"] = self.record(now_text)
        return result


def _rollback_fingerprints(record: t.Mapping[str, t.Any], previous_fingerprint: str) -> t.Tuple[str, str]:
    """The previous key's fingerprint (the record's, else the one read from its version) and the record's key."""
    return (str(record.get("previous_fingerprint") or "") or previous_fingerprint, str(record.get("fingerprint") or ""))


def plan_rollback(record: t.Mapping[str, t.Any], current_version: int, current_fingerprint: str,
                  previous_fingerprint: str, below_fingerprint: t.Optional[str] = None) -> RollbackPlan:
    """Plan a rollback from the record, the newest version and the previous version's key.

    ``previous_fingerprint`` is the fingerprint of the KV version the record names as previous;
    ``below_fingerprint`` the one of the version just below the newest (read only when the
    newest already holds the previous key: see below).

    A rollback writes the previous version back as the newest (one write with check-and-set
    against the newest it read) and then its record. When a run died between the two, the
    newest version already holds the previous key while the record still names the key it
    rolled back from: the key rolled back from is in the version just below the newest,
    and the record is completed from there (not from the newest version, which holds the
    previous key).
    """
    if record.get("rolled_back_from"):
        return RollbackPlan("done", str(record.get("key_id") or ""), current_fingerprint,
                            str(record.get("previous_key_id") or ""), str(record.get("previous_fingerprint") or ""),
                            int(record.get("previous_version") or 0))
    previous_fp, record_fp = _rollback_fingerprints(record, previous_fingerprint)
    if needs_below(record, current_fingerprint, previous_fingerprint):
        if below_fingerprint is None:
            raise DecisionError("the newest version already holds the previous key: read the version below it")
        if below_fingerprint != record_fp:
            raise DecisionError(
                "the newest version (%d) holds the previous key %s, but the version below it holds %s, not the key "
                "the record names (%s): a rollback left unfinished cannot be told apart from other writes. "
                "Nothing was changed; compare the versions and correct the record by hand."
                % (current_version, previous_fp, below_fingerprint or "nothing", record_fp))
        return RollbackPlan("resume", str(record.get("previous_key_id") or ""), previous_fp,
                            str(record.get("key_id") or ""), record_fp, current_version - 1)
    return RollbackPlan("fresh", str(record.get("previous_key_id") or ""), previous_fp,
                        str(record.get("key_id") or ""), current_fingerprint, current_version)


def needs_below(record: t.Mapping[str, t.Any], current_fingerprint: str, previous_fingerprint: str) -> bool:
    """Whether the newest version already holds the previous key while the record names another (a rollback died halfway)."""
    if record.get("rolled_back_from"):
        return False
    previous_fp, record_fp = _rollback_fingerprints(record, previous_fingerprint)
    return bool(record_fp) and current_fingerprint == previous_fp and current_fingerprint != record_fp


# -- retire ---------------------------------------------------------------------------------

def previous_state(old_key_id: str, provider: str, retire_state: str, kept_active: bool = False) -> str:
    """What becomes of the rotation's previous key once the new one is proven, as the record gives it.

    ``retire_state`` (disabled or deleted), except ``active`` where there is no previous key, where the
    provider is OpenAI and the key was to be disabled (OpenAI cannot disable a key: it stays active until
    cleanup deletes it after the grace period), and where the provider refused to delete it (``kept_active``).
    """
    if not old_key_id or kept_active or (provider == "openai" and retire_state == "disabled"):
        return "active"
    return retire_state


# -- the result of a rotation run ---------------------------------------------------------

RESULT_WORDS = ("already_rotated", "up_to_date", "waiting", "would_rotate", "would_resume", "rotated", "resumed")


def result_word(lease_outcome: str, resume: str, stage_found: str, check_mode: bool, waiting: bool = False) -> str:
    """The rotation's result in one word, as the summary and set_stats give it.

    ``waiting``: a due Anthropic key with no new Console key yet, inside ``console_key_wait``.
    """
    if lease_outcome == "already_rotated":
        return "already_rotated"
    if waiting:
        return "waiting"
    if resume == "none":
        return "up_to_date"
    if check_mode:
        return "would_rotate" if not stage_found else "would_resume"
    return "rotated" if not stage_found else "resumed"


def age_text(seconds: t.Union[int, float]) -> str:
    """An age to the minute: ``3d 4h 12m``, ``2h 0m``, ``5m``, ``0m``."""
    minutes = max(0, int(seconds)) // 60
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return "%dd %dh %dm" % (days, hours, minutes)
    if hours:
        return "%dh %dm" % (hours, minutes)
    return "%dm" % minutes


# -- cleanup --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CleanupPlan:
    """What a cleanup deletes: the previous key once its grace period is over, and stale keys."""

    previous: str  # the previous key's id, "" when it is not (yet) to be deleted
    stale: t.List[str]
    why_not: str  # why the previous key is kept, "" when it is deleted or there is none

    def as_dict(self) -> t.Dict[str, t.Any]:
        return asdict(self)


def cleanup_plan(record: t.Mapping[str, t.Any], seconds_since_retired: t.Optional[float], grace_seconds: float) -> CleanupPlan:
    """Which keys a cleanup deletes, from the record.

    Nothing while a rotation is unfinished (a stage is set). The previous key when it is not
    the key in use, was retired (``previous_state`` active or disabled) and its grace period
    has passed since ``retired_at`` (``seconds_since_retired``; None when the record gives no
    time, which keeps it). Stale keys (``stale_key_ids``) at once.
    """
    stage = str(record.get("stage") or "")
    if stage:
        return CleanupPlan("", [], "a rotation is unfinished (stage %s): run the rotation first" % stage)
    stale = [k.strip() for k in str(record.get("stale_key_ids") or "").split(",") if k.strip()]
    previous = str(record.get("previous_key_id") or "")
    if not previous or previous == str(record.get("key_id") or ""):
        return CleanupPlan("", stale, "")
    state = str(record.get("previous_state") or "")
    if state not in ("active", "disabled"):
        return CleanupPlan("", stale, "" if state in ("", "deleted") else "previous key %s is %s" % (previous, state))
    if seconds_since_retired is None or seconds_since_retired < grace_seconds:
        return CleanupPlan("", stale, "previous key %s is inside its grace period" % previous)
    return CleanupPlan(previous, stale, "")


def cleanup_result(plan: t.Mapping[str, t.Any], kept_active: t.Sequence[str], record: t.Mapping[str, t.Any],
                   check_mode: bool, grace_period: str = "") -> t.Dict[str, t.Any]:
    """What a cleanup did, or in check mode would do: the summary's fields and the workflow entry's.

    ``plan`` is :func:`cleanup_plan` as a dict, ``kept_active`` the keys the provider refused to
    delete. In check mode nothing is deleted: the keys are listed under ``would_delete``, the
    result is ``would_delete`` and ``previous_state`` stays what the record says.
    """
    targets = ([plan["previous"]] if plan.get("previous") else []) + list(plan.get("stale") or [])
    kept = [k for k in kept_active if k in targets]
    gone = [k for k in targets if k not in kept]
    why_not = str(plan.get("why_not") or "")
    if why_not.endswith("inside its grace period") and grace_period:
        why_not += " (%s)" % grace_period
    previous_state = str(record.get("previous_state") or "")
    if plan.get("previous") and plan["previous"] not in kept and not check_mode:
        previous_state = "deleted"
    word = "nothing_to_delete" if not gone else "would_delete" if check_mode else "deleted"
    return {
        "result": word,
        "changed": bool(gone) and not check_mode,
        "deleted_key_ids": [] if check_mode else gone,
        "would_delete_key_ids": gone if check_mode else [],
        "kept_active_key_ids": kept,
        "previous_state": previous_state,
        "kept": why_not if why_not else ("nothing to delete" if not targets else ""),
    }
