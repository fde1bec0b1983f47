# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A key's lease in Vault: take, renew and release it in one task each (the vault_lease module).

The lease is a KV v2 secret of its own whose data names the run holding it and when it
expires; it never holds a key value. Every write is a check-and-set against the version
this run read or holds, so of two runs exactly one gets it. Who may take it is
``rotation.lease_decision``; whether the plan still stands once it is held is
``rotation.under_lease``. Private to the apikeys.rotation collection.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation
from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import KV2Secret, VaultError, describe_secret

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# What a renewal carries on from the take, so that its result is the whole state of the run's lease.
CARRIED = ("outcome", "owner", "taken_over_from", "decision", "seen", "secret")


class LeaseError(RotationError):
    """A lease this run may not take, or lost: ``lease_error`` says which (held, cas_conflict, changed, ...)."""

    def __init__(self, message: str, lease_error: str, **details: t.Any) -> None:
        details["lease_error"] = lease_error
        super().__init__(message, **details)


def utc_text(epoch: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def machine_is(holder: rotation.Holder) -> bool:
    """Whether this code runs on the machine (and boot) ``holder`` names: only there can a process be looked up."""
    return bool(holder.boot_id) and (socket.gethostname(), rotation.boot_id()) == (holder.controller, holder.boot_id)


def alive_check(here: rotation.Holder) -> t.Callable[[int, str], bool]:
    """Process lookups where this code runs on the controller ``here`` names; elsewhere every holder counts as alive."""
    if machine_is(here):
        return rotation.process_alive
    return lambda pid, start: True


def held_data(owner: str, host: str, job: str, acquired_at: str, written: float, ttl_seconds: int,
              holder: rotation.Holder, taken_over_from: str = "", taken_over_because: str = "",
              step: str = "") -> t.Dict[str, str]:
    """The lease's data while ``owner`` holds it; it expires ``ttl_seconds`` after ``written``."""
    expires = written + int(ttl_seconds)
    data = {
        "state": "held",
        "owner": owner,
        "host": host,
        "job": job,
        "acquired_at": acquired_at,
        "expires_at": utc_text(expires),
        "expires_epoch": str(int(expires)),
        "taken_over_from": taken_over_from,
        "taken_over_because": taken_over_because,
    }
    data.update(dataclasses.asdict(holder))
    if step:
        data["step"] = step
    return data


def _read(kv: KV2Secret) -> t.Tuple[t.Dict[str, str], int]:
    """The lease's data and latest version in one request (no data and version 0 when there is none)."""
    latest = kv.read_version()
    if latest is None:
        return {}, 0
    return {str(k): str(v) for k, v in (latest.data or {}).items()}, latest.version


def _cas_write(kv: KV2Secret, data: t.Mapping[str, str], cas: int) -> int:
    # Vault's check-and-set decides: a lease always differs from what it replaces, so no read first
    return kv.write(data, cas)


def _held_by_another(where: str, host: str, seen: t.Mapping[str, str]) -> LeaseError:
    job = ", AWX job %s" % seen.get("job") if seen.get("job") else ""
    return LeaseError(
        "%s: rotation in progress in another run; this run changed nothing. The lease %s is held by run %s (key %s%s), "
        "taken at %s, until %s. If that run is still going, let it finish. If it died, the first run after %s takes "
        "the lease over and finishes its rotation; to go on at once, make sure it no longer runs, then run again with "
        "-e rotate_lease_break=%s."
        % (host, where, seen.get("owner", ""), seen.get("host", ""), job, seen.get("acquired_at", ""),
           seen.get("expires_at", ""), seen.get("expires_at", ""), seen.get("owner", "")),
        "held", seen=dict(seen))


def _record_text(secret: t.Mapping[str, t.Any]) -> str:
    return str((secret.get("custom_metadata") or {}).get("stage") or "none")


def take(lease_kv: KV2Secret, secret_kv: KV2Secret, planned: t.Mapping[str, t.Any], owner: str, host: str,
         job: str, holder: rotation.Holder, ttl_seconds: int, break_owner: str = "", accept_rotated: bool = False,
         check_mode: bool = False, now: t.Callable[[], float] = time.time) -> t.Dict[str, t.Any]:
    """Read the lease, decide, take it with check-and-set, then read the secret again and compare with the plan.

    Returns ``outcome`` (``taken``, or ``already_rotated`` when another run finished a rotation meanwhile and
    ``accept_rotated`` is set), the ``version`` held and the ``lease`` data written. Raises LeaseError when
    another run holds the lease or took it at the same moment, or the secret changed since the plan read it.
    In check mode nothing is written and ``version`` is None.
    """
    where = lease_kv.name
    seen_data, seen_version = _read(lease_kv)
    started = now()
    decision = rotation.lease_decision(seen_data, started, break_owner, here=holder, alive=alive_check(holder))
    if not decision.take:
        raise _held_by_another(where, host, seen_data)
    taken_because = decision.outcome if decision.taken_over_from else ""
    data = held_data(owner, host, job, utc_text(started), started, ttl_seconds, holder,
                     decision.taken_over_from, taken_because)
    version: t.Optional[int] = None
    if not check_mode:
        try:
            version = _cas_write(lease_kv, data, seen_version)
        except VaultError as exc:
            if exc.details.get("cas_conflict"):
                raise LeaseError(
                    "%s: rotation in progress in another run; this run changed nothing. Another run took the lease %s "
                    "at the same moment (lease version %s)." % (host, where, exc.details.get("current_version", "?")),
                    "cas_conflict", cas_conflict=True, current_version=exc.details.get("current_version"))
            raise LeaseError("%s: taking the lease %s failed, nothing was changed: %s" % (host, where, exc.message),
                             "vault", vault_error=exc.details.get("vault_error", ""))
    secret = describe_secret(secret_kv)
    outcome = rotation.under_lease(planned, secret)
    result: t.Dict[str, t.Any] = {
        "changed": False, "outcome": outcome, "version": version, "lease": data, "written_epoch": started,
        "owner": owner, "taken_over_from": decision.taken_over_from, "decision": decision.as_dict(),
        "seen": dict(seen_data, version=seen_version), "secret": secret,
    }
    if outcome == "changed" or (outcome == "already_rotated" and not accept_rotated):
        what = "already rotated by another run" if outcome == "already_rotated" else \
            "another run or person changed the secret"
        message = ("%s: %s while this run started; this run changed nothing. %s was at version %s (stage %s) and is "
                   "now at version %s (stage %s, key %s). Run again to act on what it holds now."
                   % (host, what, secret_kv.name, planned.get("current_version"), _record_text(planned),
                      secret.get("current_version"), _record_text(secret),
                      (secret.get("fingerprints") or {}).get("api_key") or "none"))
        # the lease is held: the failure carries it, so that the run gives it back
        raise LeaseError(message, outcome, **{k: v for k, v in result.items() if k != "changed"})
    return result


def renew(lease_kv: KV2Secret, held: t.Mapping[str, t.Any], host: str, ttl_seconds: int, ttl_text: str, step: str,
          rotation_id: str = "", note: str = "", check_mode: bool = False,
          now: t.Callable[[], float] = time.time) -> t.Dict[str, t.Any]:
    """Renew the lease ``held`` (the result of take or of the last renewal) with check-and-set against its version.

    The new expiry is counted from the time noted before the write is sent. Everything ``held`` says about the
    take (outcome, decision, secret) is carried on, so the latest result is the whole state of the run's lease.
    """
    version = held.get("version")
    if not isinstance(version, int):
        raise LeaseError("%s: the lease is not held by this run (no version to renew)." % host, "not_held")
    previous = held.get("lease") or {}
    written = now()
    data = held_data(str(previous.get("owner", "")), str(previous.get("host", host)), str(previous.get("job", "")),
                     str(previous.get("acquired_at", "")), written, ttl_seconds, rotation.Holder.from_lease(previous),
                     str(previous.get("taken_over_from", "")), str(previous.get("taken_over_because", "")), step)
    new_version = version
    if not check_mode:
        try:
            new_version = _cas_write(lease_kv, data, version)
        except VaultError as exc:
            stopped = "%s: rotation %s stopped before %s: " % (host, rotation_id, step)
            if exc.details.get("cas_conflict"):
                message = ("another run took its lease %s over (lease version now %s), since this run took longer than "
                           "rotate_lease_ttl (%s) between two renewals. That run carries the rotation on from the "
                           "record; this one changes nothing more."
                           % (lease_kv.name, exc.details.get("current_version", "?"), ttl_text))
                error = "lost"
            else:
                message = ("renewing its lease %s failed: %s. The record keeps the rotation's stage: run again to "
                           "finish it." % (lease_kv.name, exc.message))
                error = "vault"
            raise LeaseError((stopped + message + (" " + note if note else "")).strip(), error,
                             cas_conflict=bool(exc.details.get("cas_conflict")),
                             current_version=exc.details.get("current_version"))
    result = {key: held[key] for key in CARRIED if key in held}
    result.update({"changed": False, "version": new_version, "lease": data, "written_epoch": written})
    return result


def released_data(owner: str, host: str, now: float, because: str = "") -> t.Dict[str, str]:
    data = {"state": "released", "owner": owner, "host": host, "released_at": utc_text(now)}
    if because:
        data["released_because"] = because
    return data


def release(lease_kv: KV2Secret, held: t.Mapping[str, t.Any], host: str, check_mode: bool = False,
            now: t.Callable[[], float] = time.time) -> t.Dict[str, t.Any]:
    """Give back the lease ``held`` (check-and-set against the version held). A lease this run lost is left alone."""
    version = held.get("version")
    if not isinstance(version, int):
        raise LeaseError("%s: the lease is not held by this run (no version to release)." % host, "not_held")
    owner = str((held.get("lease") or {}).get("owner", ""))
    data = released_data(owner, host, now())
    new_version = version if check_mode else _cas_write(lease_kv, data, version)
    return {"changed": False, "released": True, "version": new_version, "lease": data}


def release_dead(lease_kv: KV2Secret, host: str, holder: rotation.Holder, check_mode: bool = False,
                 now: t.Callable[[], float] = time.time) -> t.Dict[str, t.Any]:
    """Release the lease only when its holder is provably dead (a run on this controller, since its boot, whose
    process is gone). A lease held by a live run, or a run elsewhere, is left alone."""
    seen, seen_version = _read(lease_kv)
    if not rotation.dead_lease(seen, here=holder, alive=alive_check(holder)):
        return {"changed": False, "released": False, "version": None, "lease": seen}
    data = released_data(seen.get("owner", ""), host, now(), "its holder's process is gone")
    version = None if check_mode else _cas_write(lease_kv, data, seen_version)
    return {"changed": not check_mode, "released": not check_mode, "version": version, "lease": data,
            "released_from": seen.get("owner", "")}
