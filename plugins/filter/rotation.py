# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotate role's decisions as filters: the role asks, plugins/module_utils/rotation.py answers."""

from __future__ import annotations

import dataclasses
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation, settings, summary


def resume_from(record: t.Mapping[str, t.Any], due: bool, current_fingerprint: str) -> str:
    record = record or {}
    return rotation.resume_from(bool(due), str(record.get("stage") or ""), str(current_fingerprint or ""), record)


def plan_start(secret: t.Mapping[str, t.Any], force: t.Any, max_age_seconds: t.Any, max_age: str) -> t.Dict[str, t.Any]:
    try:
        return rotation.plan_start(secret or {}, bool(force), int(max_age_seconds or 0), str(max_age or ""))
    except rotation.DecisionError as exc:
        raise AnsibleFilterError(str(exc)) from None


def plan_keys(record: t.Mapping[str, t.Any], resume: str, stage_found: str, current_fingerprint: str,
              current_version: t.Any, current_key_id: str = "") -> t.Dict[str, t.Any]:
    keys = rotation.plan_keys(str(resume or ""), str(stage_found or ""), record or {}, str(current_fingerprint or ""),
                              int(current_version or 0), str(current_key_id or ""))
    keys.update(rotation.rotation_identity(str(stage_found or ""), record or {}))
    return keys


def plan(secret: t.Mapping[str, t.Any], force: t.Any, max_age_seconds: t.Any, max_age: str, current_key_id: str = "",
         where: str = "", now: t.Any = None) -> t.Dict[str, t.Any]:
    try:
        return rotation.plan(secret or {}, bool(force), int(max_age_seconds or 0), str(max_age or ""),
                             str(current_key_id or ""), str(where or ""), None if now in (None, "") else float(now))
    except rotation.DecisionError as exc:
        raise AnsibleFilterError(str(exc)) from None


def plan_stop(problem: str, resume: str, preflight_problems: t.Optional[t.Sequence[str]] = None) -> str:
    return rotation.plan_stop(str(problem or ""), str(resume or ""), [str(p) for p in preflight_problems or []])


def superseded_stale(stale_key_ids: t.Optional[t.Sequence[str]], new_key_id: str, old_key_id: str, old_fingerprint: str,
                     served_fingerprint: str) -> t.List[str]:
    return rotation.superseded_stale([str(k) for k in stale_key_ids or []], str(new_key_id or ""), str(old_key_id or ""),
                                     str(old_fingerprint or ""), str(served_fingerprint or ""))


def lease_holder(_ignored: t.Any = None) -> t.Dict[str, str]:
    return dataclasses.asdict(rotation.Holder.here())


def rollback_plan(record: t.Mapping[str, t.Any], current_version: t.Any, current_fingerprint: str,
                  previous_fingerprint: str, below_fingerprint: t.Optional[str] = None, now: str = "") -> t.Dict[str, t.Any]:
    try:
        plan = rotation.plan_rollback(record or {}, int(current_version or 0), str(current_fingerprint or ""),
                                      str(previous_fingerprint or ""), below_fingerprint)
    except rotation.DecisionError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return plan.as_dict(str(now or ""))


def rollback_needs_below(record: t.Mapping[str, t.Any], current_fingerprint: str, previous_fingerprint: str) -> bool:
    return rotation.needs_below(record or {}, str(current_fingerprint or ""), str(previous_fingerprint or ""))


def previous_state(old_key_id: str, provider: str, retire_state: str, kept_active: t.Any = False) -> str:
    return rotation.previous_state(str(old_key_id or ""), str(provider or ""), str(retire_state or ""), bool(kept_active))


def rotation_result(lease_outcome: str, resume: str, stage_found: str, check_mode: bool, waiting: t.Any = "") -> str:
    return rotation.result_word(str(lease_outcome or ""), str(resume or ""), str(stage_found or ""), bool(check_mode),
                                bool(waiting))


# The facts the report reads from a key's host variables (set_fact and register), by name without
# the rotate_ prefix; the lease's own fields come from its result.
HOST_FACTS = ("resume_from", "stage_found", "waiting", "record", "current_fingerprint", "current_version", "new_key_id",
              "new_fingerprint", "new_version", "old_key_id", "old_fingerprint", "rotation_id", "rotation_started_at",
              "provider", "vault_mount", "vault_path", "age_seconds", "max_age", "due_reason", "lease", "lease_mount",
              "lease_path", "lease_released", "key_name_prefix", "base_version", "health_url_shown", "preverify",
              "created_ts", "verify_probe", "verify_health", "stored_ts",
              "grace_period", "stale_key_ids", "stale_kept", "orphans_revoked")
LEASE_FIELDS = {"lease_outcome": "outcome", "lease_secret": "secret", "lease_owner": "owner",
                "lease_taken_over": "taken_over_from", "lease_decision": "decision"}


def report_facts(host: t.Mapping[str, t.Any], role_values: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The report's facts from one key's host variables, each read once (null when the run never set it),
    with the values that live in the role rather than the host (``role_values``: key, check_mode, ...)."""
    def read(name: str) -> t.Any:
        try:
            return host[name]
        except KeyError:
            return None

    facts = {name: read("rotate_" + name) for name in HOST_FACTS}
    lease = facts["lease"] if isinstance(facts["lease"], t.Mapping) else {}
    facts.update((name, lease.get(field)) for name, field in LEASE_FIELDS.items())
    facts.update(role_values)
    return facts


def rotation_report(facts: t.Mapping[str, t.Any], role_values: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Dict[str, t.Any]]:
    if role_values is not None:
        facts = report_facts(facts or {}, role_values)
    return summary.report(facts or {})


def rollback_report(facts: t.Mapping[str, t.Any]) -> t.Dict[str, t.Dict[str, t.Any]]:
    return summary.rollback_report(facts or {})


def rollback_failure(facts: t.Mapping[str, t.Any]) -> str:
    return summary.rollback_failure(facts or {})


def probe_report(facts: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return summary.probe_report(facts or {})


def verify_failure(facts: t.Mapping[str, t.Any]) -> str:
    return summary.verify_failure(facts or {})


def age_text(seconds: t.Any) -> str:
    return rotation.age_text(float(seconds or 0))


def cleanup_plan(record: t.Mapping[str, t.Any], seconds_since_retired: t.Any, grace_seconds: t.Any) -> t.Dict[str, t.Any]:
    since = None if seconds_since_retired in (None, "") else float(seconds_since_retired)
    return rotation.cleanup_plan(record or {}, since, float(grace_seconds or 0)).as_dict()


def cleanup_result(plan: t.Mapping[str, t.Any], kept_active: t.Optional[t.Sequence[str]], record: t.Mapping[str, t.Any],
                   check_mode: bool, grace_period: str = "") -> t.Dict[str, t.Any]:
    return rotation.cleanup_result(plan or {}, list(kept_active or []), record or {}, bool(check_mode), str(grace_period or ""))


def check_settings(values: t.Mapping[str, t.Any], short_set: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    return settings.check_settings(values or {}, short_set or {})


def preflight_problems(resume: str, deploy_tasks: str, deploy_file_found: bool, has_health_url: bool,
                       allow_without_deploy: t.Any, short_set: t.Optional[t.Mapping[str, t.Any]] = None,
                       deploy_target: str = "") -> t.List[str]:
    return settings.preflight(str(resume or ""), str(deploy_tasks or "").strip(), bool(deploy_file_found),
                              bool(has_health_url), allow_without_deploy, short_set or {},
                              str(deploy_target or "").strip())


def deploy_target_needs(target: str) -> t.List[str]:
    return settings.target_needs(str(target or "").strip())


class FilterModule:
    """The rotate role's decisions."""

    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "resume_from": resume_from,
            "plan_start": plan_start,
            "plan_keys": plan_keys,
            "plan": plan,
            "plan_stop": plan_stop,
            "superseded_stale": superseded_stale,
            "lease_holder": lease_holder,
            "rollback_plan": rollback_plan,
            "rollback_needs_below": rollback_needs_below,
            "previous_state": previous_state,
            "rotation_result": rotation_result,
            "rotation_report": rotation_report,
            "verify_failure": verify_failure,
            "rollback_report": rollback_report,
            "rollback_failure": rollback_failure,
            "probe_report": probe_report,
            "age_text": age_text,
            "cleanup_plan": cleanup_plan,
            "cleanup_result": cleanup_result,
            "check_settings": check_settings,
            "preflight_problems": preflight_problems,
            "deploy_target_needs": deploy_target_needs,
        }
