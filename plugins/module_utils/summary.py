# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rotation run reports for one key: the summary it prints and the result it hands on.

``report(facts)`` takes the run's facts as the role gathered them (``roles/rotate/tasks/summary.yml``
names each one; a fact the run never set is ``None``, a task that did not run is ``None`` or a result
with ``skipped``) and returns::

    {"summary": {...},   # printed by "Report | summary"
     "stats": {...}}     # the key's result: the closing table and set_stats (AWX workflows)

The summary has one of three shapes, after the base (key, provider, vault, result, stage):

* check mode: ``current`` and, when the key is due, the ``plan`` the run would carry out;
* another run rotated the key while this one started: ``current`` as Vault now serves it;
* otherwise: ``current`` (and, after a rotation, ``previous``, ``probes``, ``revoked`` and ``left_active``).

No key value is ever among the facts: ids, fingerprints, versions and states only.
"""

from __future__ import annotations

import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation

Facts = t.Mapping[str, t.Any]


def _ran(result: t.Any) -> t.Optional[t.Mapping[str, t.Any]]:
    """A registered task result, or None when the task did not run (never defined, or skipped)."""
    if isinstance(result, t.Mapping) and not result.get("skipped"):
        return result
    return None


def _text(value: t.Any) -> str:
    return "" if value is None else str(value)


def _int(value: t.Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _map(value: t.Any) -> t.Mapping[str, t.Any]:
    return value if isinstance(value, t.Mapping) else {}


def _secret(facts: Facts) -> str:
    """The secret's ``mount/path``, as the report and the closing table name it."""
    return "%s/%s" % (_text(facts.get("vault_mount")), _text(facts.get("vault_path")))


def _seconds_to(start: t.Any, *checks: t.Any) -> t.Union[int, float]:
    """Seconds from the timestamp ``start`` to the last answer of the ``checks`` that ran (their ``answered_at``).

    To 0.1 s; 0 when ``start`` is not a timestamp or no check ran and answered (a resumed run that did not do the
    step). The later of several checks is the end: verify ends with its last confirming probe.
    """
    try:
        begin = float(start)
    except (TypeError, ValueError):
        return 0
    ends = [float(check["answered_at"]) for check in map(_ran, checks)
            if check is not None and isinstance(check.get("answered_at"), (int, float))]
    return round(max(ends) - begin, 1) if ends else 0


def _attempts(result: t.Optional[t.Mapping[str, t.Any]]) -> int:
    """How many tries an ``until:`` task made (1 when it did not retry), 0 when it did not run."""
    if result is None:
        return 0
    return _int(result.get("attempts", 1))


class _Run:
    """The facts of one run, with the few derived answers every part of the report shares."""

    def __init__(self, facts: Facts) -> None:
        self.f = facts
        self.lease_outcome = _text(facts.get("lease_outcome"))
        self.overtaken = self.lease_outcome == "already_rotated"
        self.resume = _text(facts.get("resume_from"))
        self.stage_found = _text(facts.get("stage_found"))
        self.check_mode = bool(facts.get("check_mode"))
        self.waiting = facts.get("waiting")
        self.result = rotation.result_word(self.lease_outcome, self.resume, self.stage_found, self.check_mode,
                                           bool(self.waiting))
        self.lease_secret = _map(facts.get("lease_secret"))
        self.lease_metadata = _map(self.lease_secret.get("custom_metadata"))
        self.record = _map(facts.get("record"))
        self.current_fingerprint = _text(facts.get("current_fingerprint"))

    def get(self, name: str, default: t.Any = "") -> t.Any:
        value = self.f.get(name)
        return default if value is None else value

    def trusted_record(self) -> t.Mapping[str, t.Any]:
        """The record as it is now, trusted only when it describes the key Vault serves."""
        if self.result == "already_rotated":
            return self.lease_metadata
        if _text(self.record.get("fingerprint")) == self.current_fingerprint:
            return self.record
        return {}

    def current_key_id(self, record: t.Mapping[str, t.Any]) -> str:
        """The key in use: from the record, else the id the plan found for it (adopted by its hint)."""
        if record.get("key_id"):
            return _text(record["key_id"])
        if _text(self.get("old_fingerprint")) == self.current_fingerprint:
            return _text(self.get("old_key_id"))
        return ""


def _stats(run: _Run) -> t.Dict[str, t.Any]:
    if run.result in ("rotated", "resumed"):
        keys = {
            "key_id": run.get("new_key_id"),
            "fingerprint": run.get("new_fingerprint"),
            "vault_version": _int(run.get("new_version", 0)),
            "previous_key_id": run.get("old_key_id"),
            "previous_fingerprint": run.get("old_fingerprint"),
            "previous_state": run.get("previous_state"),
            "rotation_id": run.get("rotation_id"),
            "rotation_started_at": run.get("rotation_started_at"),
        }
    else:
        record = run.trusted_record()
        overtaken = run.result == "already_rotated"
        keys = {
            "key_id": run.current_key_id(record),
            "fingerprint": (_map(run.lease_secret.get("fingerprints")).get("api_key", "") if overtaken
                            else run.current_fingerprint),
            "vault_version": _int(run.lease_secret.get("current_version", 0) if overtaken else run.get("current_version", 0)),
        }
        for field in ("previous_key_id", "previous_fingerprint", "previous_state", "rotation_id", "rotation_started_at"):
            keys[field] = record.get(field) or ""
    stats = {
        "provider": run.get("provider"),
        "vault_path": _secret(run.f),
        "stage": _stage(run),
        "result": run.result,
        "changed": run.result in ("rotated", "resumed"),
        "check_mode": run.check_mode,
    }
    stats.update(keys)
    stats.update(_map(run.get("run_timing", {})))
    if run.waiting is not None:
        stats["waiting"] = run.waiting
    return stats


def _stage(run: _Run) -> str:
    if run.resume == "none" or run.overtaken:
        return "none"
    return "plan" if run.check_mode else "done"


def _result_text(run: _Run) -> str:
    if run.overtaken:
        return ("already rotated by another run (at %s) while this one started: nothing to do"
                % _text(run.lease_metadata.get("rotated_at")))
    if run.waiting is not None:
        return _text(run.waiting)
    if run.resume == "none":
        return "up to date: %s old, max_age %s" % (rotation.age_text(float(run.get("age_seconds", 0) or 0)),
                                                   run.get("max_age"))
    if run.check_mode:
        what = "rotate" if run.resume == "create" and not run.stage_found else "resume at " + run.resume
        return "would %s (%s)" % (what, run.get("due_reason"))
    return "rotated" if not run.stage_found else "rotation resumed at %s and finished" % run.resume


def _lease(run: _Run) -> t.Dict[str, t.Any]:
    if _ran(run.f.get("lease")) is None:
        return {}
    released = run.f.get("lease_released")
    released = released if isinstance(released, t.Mapping) else {}
    taken_over_from = run.get("lease_taken_over")
    return {"lease": {
        "path": "%s/%s" % (run.get("lease_mount"), run.get("lease_path")),
        "owner": run.get("lease_owner"),
        "taken_over_from": taken_over_from,
        "taken_over_because": _map(run.get("lease_decision", {})).get("outcome", "") if taken_over_from else "",
        "released": _ran(released) is not None and "version" in released,
        "note": ("" if "version" in released
                 else "not released (%s): it expires after rotate_lease_ttl" % _text(released.get("msg", "lost"))),
    }}


def _current(run: _Run) -> t.Dict[str, t.Any]:
    # a record about another key (the key was replaced outside the role) does not name the key in use
    return {"current": {
        "key_id": run.current_key_id(run.trusted_record()),
        "fingerprint": run.current_fingerprint,
        "vault_version": run.get("current_version"),
    }}


def _plan(run: _Run) -> t.Dict[str, t.Any]:
    shown = _current(run)
    if run.resume == "none":
        return shown
    health = run.get("health_url")
    old_key_id = _text(run.get("old_key_id"))
    retire_state = _text(run.get("retire_state"))
    if run.get("provider") == "openai" and retire_state == "disabled":
        retire_state = "active until cleanup"
    shown["plan"] = {
        "create": "%s-%s" % (run.get("key_name_prefix"), run.get("rotation_id")) if run.resume == "create"
                  else "no (already created)",
        "store_as_vault_version": _int(run.get("base_version", 0)) + 1,
        "verify": "provider probe%s, %s consecutive successes" % (
            " and %s" % run.get("health_url_shown") if health else "", run.get("verify_successes")),
        "retire": "%s -> %s" % (old_key_id, retire_state) if old_key_id else "nothing (previous key unknown)",
    }
    return shown


def _overtaken(run: _Run) -> t.Dict[str, t.Any]:
    return {"current": {
        "key_id": run.lease_metadata.get("key_id", ""),
        "fingerprint": _map(run.lease_secret.get("fingerprints")).get("api_key", ""),
        "vault_version": run.lease_secret.get("current_version", 0),
    }}


def _done(run: _Run) -> t.Dict[str, t.Any]:
    if run.resume == "none":
        return _current(run)
    old_key_id = _text(run.get("old_key_id"))
    previous_state = _text(run.get("previous_state"))
    verify = _ran(run.f.get("verify_probe"))
    kept = [_text(key) for key in run.get("stale_kept", []) or []]
    revoked = [old_key_id + " " + previous_state] if previous_state != "active" else []
    revoked += [_text(key) + " deleted" for key in run.get("stale_key_ids", []) or [] if _text(key) not in kept]
    revoked += [_text(key) + " (orphan of an interrupted run) deleted" for key in run.get("orphans_revoked", []) or []]
    left_active = (["%s until cleanup deletes it after %s" % (old_key_id, run.get("grace_period"))]
                   if previous_state == "active" and old_key_id else [])
    left_active += [key + " (the provider refused to delete it: see the warning)" for key in kept]
    preverify = run.f.get("preverify")
    return {
        "current": {"key_id": run.get("new_key_id"), "fingerprint": run.get("new_fingerprint"),
                    "vault_version": _int(run.get("new_version", 0)),
                    "name": "%s-%s" % (run.get("key_name_prefix"), run.get("rotation_id"))},
        "previous": {"key_id": run.get("old_key_id"), "fingerprint": run.get("old_fingerprint"),
                     "vault_version": _int(run.get("base_version", 0)), "state": run.get("previous_state")},
        "probes": {
            "pre_verify_attempts": _int(_map(preverify).get("attempts", 1)) if preverify is not None else 0,
            "pre_verify_seconds": _seconds_to(run.f.get("created_ts"), preverify),
            "verify_attempts": _attempts(verify),
            "health_attempts": _attempts(_ran(run.f.get("verify_health"))),
            "consecutive_successes": _int(run.get("verify_successes", 0)) if verify is not None else 0,
            "seconds_from_store_to_verified": _seconds_to(run.f.get("stored_ts"), verify, run.f.get("verify_health")),
        },
        "revoked": revoked,
        "left_active": left_active,
    }


def rollback_report(facts: Facts) -> t.Dict[str, t.Dict[str, t.Any]]:
    """What a rollback run reports for one key: ``{"summary": ..., "stats": ...}`` as :func:`report` for a rotation.

    ``facts``: ``key``, ``check_mode``, ``done`` (an earlier run already rolled back: the record names
    ``rolled_back_from``), the ``record`` as read, the ``plan`` (``rotation.plan_rollback``: ``from_key_id``,
    ``from_fingerprint``), ``serving`` (the fingerprint Vault serves after the rollback), ``current_version``, the
    results of re-enabling the previous key (``reenabled``) and of the write back (``rolled_back``; None when not
    registered), ``provider``, ``vault_mount``, ``vault_path`` and ``run_timing``. Key ids, fingerprints and versions as
    the record has them after the rollback: ``key_*`` is the key Vault serves again, ``previous_*`` the key it was
    rolled back from.
    """
    record, plan = _map(facts.get("record")), _map(facts.get("plan"))
    done, check_mode = bool(facts.get("done")), bool(facts.get("check_mode"))
    reenable_changed = bool(_map(facts.get("reenabled")).get("changed"))
    re_enabled = reenable_changed and not check_mode
    # the key Vault serves again: an earlier rollback's record already names it as key_id
    key_id = _text(record.get("key_id")) if done else record.get("previous_key_id")
    rolled_back, current_version = _map(facts.get("rolled_back")), facts.get("current_version")
    if done:
        result, text = "already_rolled_back", "already rolled back: verified again"
    elif check_mode:
        result = "would_roll_back"
        text = "would roll back: %swrite KV version %s back as the newest, deploy and verify it" % (
            "re-enable %s, " % _text(record.get("previous_key_id")) if reenable_changed else "",
            _text(record.get("previous_version")))
    else:
        result, text = "rolled_back", "rolled back"
    summary = {
        "key": facts.get("key"),
        "result": text,
        "serving": facts.get("serving"),
        "vault_version": rolled_back.get("version", current_version),
        "key_id": key_id,
        "re_enabled": re_enabled,
        "rolled_back_from": record.get("rolled_back_from") if done else "%s (%s), left active" % (
            _text(plan.get("from_key_id")), _text(plan.get("from_fingerprint"))),
    }
    stats = {
        "provider": facts.get("provider"),
        "vault_path": _secret(facts),
        "result": result,
        "changed": not done and not check_mode,
        "key_id": key_id,
        "fingerprint": _text(facts.get("serving")).strip(),
        "vault_version": _int(rolled_back.get("version") or current_version),
        "previous_key_id": _text(record.get("previous_key_id")) if done else _text(record.get("key_id")),
        "previous_fingerprint": plan.get("from_fingerprint"),
        "re_enabled": re_enabled,
        "check_mode": check_mode,
    }
    stats.update(_map(facts.get("run_timing")))
    return {"summary": summary, "stats": stats}


def rollback_failure(facts: Facts) -> str:
    """Why a rollback stopped before it changed Vault, and what it leaves behind, in the words of its failure.

    ``facts``: ``previous_key_id`` and ``previous_fingerprint`` (the key the rollback would bring back), ``provider``,
    the results of probing that key (``probe``) and of re-enabling it (``reenabled``), None when not registered,
    ``failed_msg`` (the failed task's message), ``current_fingerprint`` and ``current_version`` (what Vault still
    serves) and ``check_mode``.
    """
    key = "%s (%s)" % (_text(facts.get("previous_key_id")), _text(facts.get("previous_fingerprint")))
    probe = _ran(facts.get("probe"))
    if probe is not None:
        why = "the previous key %s does not authenticate at %s (%s)" % (key, _text(facts.get("provider")), _last_reason(probe))
    else:
        why = "re-enabling the previous key %s failed (%s)" % (_text(facts.get("previous_key_id")),
                                                               _text(facts.get("failed_msg") or "no message"))
    text = "rollback stopped before Vault was changed: %s. Vault still serves %s (version %s)." % (
        why, _text(facts.get("current_fingerprint")), _text(facts.get("current_version")))
    if _map(facts.get("reenabled")).get("changed") and not facts.get("check_mode"):
        text += " The previous key was re-enabled; disable it again if it should stay off."
    return text


def probe_report(facts: Facts) -> t.Dict[str, t.Any]:
    """What the probe entry point reports for one key: ``{"live": ..., "summary": ..., "stats": ..., "message": ...}``.

    ``facts``: ``key``, ``provider``, ``vault_mount``, ``vault_path``, ``active`` (the secret as read), the results of
    the probe at the provider (``probe``) and of the application's key health endpoint (``health``; None or skipped
    without a ``health_url``), ``health_url_shown``, ``check_mode`` and ``run_timing``.

    ``live``: the provider accepts the key and, where there is a health endpoint, the application reports it.
    ``summary`` is printed for a live key; ``message`` says why a key is not live and what to do (empty when live);
    ``stats``, live or not, is the key's entry in the closing table and ``set_stats``, so that a workflow's failure
    branch learns which key failed, and why.
    """
    active, probe, health = _map(facts.get("active")), _map(facts.get("probe")), _ran(facts.get("health"))
    record = _map(active.get("custom_metadata"))
    fingerprint = _text(_map(active.get("fingerprints")).get("api_key"))
    provider, stage = _text(facts.get("provider")), _text(record.get("stage"))
    provider_live = bool(probe.get("live"))
    live = provider_live and (health is None or bool(health.get("live")))
    served = _text((health or {}).get("fingerprint", "no key"))
    if live:
        reason = message = ""
    elif not provider_live:
        why = _last_reason(probe)
        reason = "provider: " + why
        message = "NOT LIVE. The key in Vault (%s, version %s) is not live at %s: %s" % (
            fingerprint, _text(active.get("current_version")), provider, why if why.endswith(".") else why + ".")
    else:
        why = _last_reason(health or {})
        reason = "application serves %s: %s" % (served, why)
        message = ("NOT LIVE. The key in Vault (%s) is live at %s, but the application at %s reports %s (%s): run its "
                   "deploy hook." % (fingerprint, provider, _text(facts.get("health_url_shown")), served, why))
    if message and stage:
        message += " A rotation is unfinished (stage=%s): run the rotate playbook to finish it." % stage
    stats = {
        "provider": provider,
        "vault_path": _secret(facts),
        "vault_version": _int(active.get("current_version")),
        # the record's key id only where the record describes the key Vault serves
        "key_id": _text(record.get("key_id")) if _text(record.get("fingerprint")) == fingerprint else "",
        "fingerprint": fingerprint,
        "application_fingerprint": _text(health.get("fingerprint", "")) if health is not None else "",
        "unfinished_stage": stage,
        "check_mode": bool(facts.get("check_mode")),
    }
    stats.update(_map(facts.get("run_timing")))
    stats.update(live=live, provider_live=provider_live, reason=reason)
    summary = {
        "key": facts.get("key"),
        "provider": provider,
        "vault": "%s version %s" % (_secret(facts), _text(active.get("current_version"))),
        "key_id": record.get("key_id", "unknown"),
        "fingerprint": fingerprint,
        "live": live,
        # authenticated, but the provider refused it the model list (a scope-restricted key)
        "restricted": bool(probe.get("restricted", False)),
        "latency_ms": probe.get("latency_ms"),
        "application": "serves " + served if health is not None else "no health_url",
        "unfinished_stage": record.get("stage", "none"),
    }
    return {"live": live, "summary": summary, "stats": stats, "message": message}


def _last_reason(result: t.Mapping[str, t.Any]) -> str:
    """A failed check's ``reason`` (the module's), else its msg, else 'no answer'."""
    if "reason" not in result:
        return _text(result.get("msg", "no answer"))
    return _text(result["reason"])


def _probe_failure(result: t.Mapping[str, t.Any]) -> str:
    """Why a probe task's result is not live: the failed probe's own reason (``first_failure``, without the count
    of consecutive probes that ``reason`` carries), else its ``reason``, else its msg, else 'no answer'."""
    if result.get("first_failure"):
        return _text(result["first_failure"])
    return _last_reason(result)


def verify_failure(facts: Facts) -> str:
    """Why the new key was not proven, in one sentence (the restore's message and the record's ``last_failure``).

    ``facts``: ``new_fingerprint``, ``provider``, ``verify_successes``, ``health_url_shown``, the results of verify's
    two checks (``verify_probe``, ``verify_health``; None when not registered) and, for a failure before either of
    them (a deploy hook), the failed task's name and msg (``failed_task``, ``failed_msg``). Each check probes until
    the first success, then requires the other ``verify_successes - 1`` in the same run: one that is not live with
    ``successes`` above 0 went live and then failed a confirming probe. The first check that failed is named, in the
    order verify runs them.
    """
    fingerprint, confirming = _text(facts.get("new_fingerprint")), _int(facts.get("verify_successes")) - 1
    probe, health, url = facts.get("verify_probe"), _ran(facts.get("verify_health")), _text(facts.get("health_url_shown"))
    if isinstance(probe, t.Mapping) and (probe.get("vault_error") or probe.get("key_mismatch")):
        # the probe read no key to try: Vault refused the read, or holds another key
        return "the key to verify could not be read from Vault: %s" % _text(probe.get("msg") or "no message")
    if isinstance(probe, t.Mapping) and not probe.get("live", False):
        if _int(probe.get("successes", 0)) > 0:
            return ("the key in Vault (%s) went live, then failed confirming probe %s of %d after %s consecutive success(es) (%s)"
                    % (fingerprint, _int(probe.get("probes", 1)) - 1, confirming, _int(probe.get("successes")) - 1,
                       _probe_failure(probe)))
        return "the key in Vault (%s) did not authenticate at %s after %s probe(s) (last: %s)" % (
            fingerprint, _text(facts.get("provider")), probe.get("attempts", 1), _probe_failure(probe))
    if health is not None and not health.get("live", False):
        if _int(health.get("successes", 0)) > 0:
            return ("the application at %s reported the new key live, then not in confirming probe %s of %d (%s)"
                    % (url, _int(health.get("probes", 1)) - 1, confirming, _probe_failure(health)))
        return ("the application at %s did not report the key %s live after %s probe(s) (it reported %s, %s)"
                % (url, fingerprint, health.get("attempts", 1), health.get("fingerprint", "no key"), _probe_failure(health)))
    return "%s failed: %s" % (facts.get("failed_task") or "deploy/verify", _text(facts.get("failed_msg") or "no message"))


def report(facts: Facts) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The summary and the result of one key's run (see the module's docstring)."""
    run = _Run(facts)
    summary = {
        "key": run.get("key"),
        "provider": run.get("provider"),
        "vault": _secret(run.f),
        "result": _result_text(run),
        "stage": _stage(run),
    }
    if run.check_mode:
        summary.update(_plan(run))
    elif run.overtaken:
        summary.update(_overtaken(run))
    else:
        summary.update(_done(run))
    summary.update(_lease(run))
    return {"summary": summary, "stats": _stats(run)}
