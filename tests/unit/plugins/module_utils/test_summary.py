"""One key's run report (plugins/module_utils/summary.py): every result word, every summary shape, the lease line."""

from __future__ import annotations

import json

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation, summary

OLD, NEW, OTHER = "sha256:000000000001", "sha256:000000000002", "sha256:00000000000f"
TIMING = {"started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:06Z", "duration_seconds": 6.0}


def facts(**changes):
    """The facts of a run that rotated an OpenRouter key from version 1 to 2 with its lease released."""
    base = {
        "key": "app-key", "check_mode": False, "provider": "openrouter", "vault_mount": "secret", "vault_path": "apps/app",
        "lease_outcome": "taken", "resume_from": "create", "stage_found": "", "waiting": None,
        "lease_secret": {"current_version": 1, "custom_metadata": {}, "fingerprints": {"api_key": OLD}},
        "record": {"fingerprint": OLD, "key_id": "k-old"},
        "current_fingerprint": OLD, "current_version": 1,
        "new_key_id": "k-new", "new_fingerprint": NEW, "new_version": "2",
        "old_key_id": "k-old", "old_fingerprint": OLD, "previous_state": "disabled",
        "rotation_id": "20261201100000-ab12", "rotation_started_at": "2026-12-01T10:00:00Z",
        "run_timing": TIMING, "age_seconds": 3600, "max_age": "30d", "due_reason": "forced",
        "lease": {"version": 3}, "lease_mount": "secret", "lease_path": "apps/app.lock", "lease_owner": "run-1",
        "lease_taken_over": "", "lease_decision": {"outcome": "free"}, "lease_released": {"version": 4},
        "key_name_prefix": "app-key", "base_version": "1", "health_url": "", "health_url_shown": "",
        "verify_successes": 3, "retire_state": "disabled",
        "preverify": {"attempts": 2}, "preverify_seconds": 0.4,
        "verify_probe": {"attempts": 4}, "verify_health": {"skipped": True}, "live_seconds": 1.2,
        "grace_period": "7d", "stale_key_ids": [], "stale_kept": [], "orphans_revoked": [],
    }
    base.update(changes)
    return base


def test_a_rotation():
    out = summary.report(facts())
    assert out["summary"] == {
        "key": "app-key", "provider": "openrouter", "vault": "secret/apps/app", "result": "rotated", "stage": "done",
        "current": {"key_id": "k-new", "fingerprint": NEW, "vault_version": 2, "name": "app-key-20261201100000-ab12"},
        "previous": {"key_id": "k-old", "fingerprint": OLD, "vault_version": 1, "state": "disabled"},
        "probes": {"pre_verify_attempts": 2, "pre_verify_seconds": 0.4, "verify_attempts": 4, "health_attempts": 0,
                   "consecutive_successes": 3, "seconds_from_store_to_verified": 1.2},
        "revoked": ["k-old disabled"], "left_active": [],
        "lease": {"path": "secret/apps/app.lock", "owner": "run-1", "taken_over_from": "", "taken_over_because": "",
                  "released": True, "note": ""},
    }
    assert out["stats"] == dict(
        TIMING, provider="openrouter", vault_path="secret/apps/app", stage="done", result="rotated", changed=True,
        check_mode=False, key_id="k-new", fingerprint=NEW, vault_version=2, previous_key_id="k-old",
        previous_fingerprint=OLD, previous_state="disabled", rotation_id="20261201100000-ab12",
        rotation_started_at="2026-12-01T10:00:00Z")


# (name, fact changes, result word, summary result text, stage, summary keys besides the base and the lease)
SHAPES = [
    ("rotated", {}, "rotated", "rotated", "done", ["current", "previous", "probes", "revoked", "left_active"]),
    ("resumed", {"stage_found": "stored", "resume_from": "deploy"}, "resumed",
     "rotation resumed at deploy and finished", "done", ["current", "previous", "probes", "revoked", "left_active"]),
    ("up to date", {"resume_from": "none", "age_seconds": 3 * 86400 + 120}, "up_to_date",
     "up to date: 3d 0h 2m old, max_age 30d", "none", ["current"]),
    ("waiting", {"resume_from": "none", "waiting": "waiting for a new Console key at secret/apps/app-next"}, "waiting",
     "waiting for a new Console key at secret/apps/app-next", "none", ["current"]),
    ("overtaken", {"lease_outcome": "already_rotated",
                   "lease_secret": {"current_version": 2, "fingerprints": {"api_key": NEW},
                                    "custom_metadata": {"key_id": "k-other", "rotated_at": "2026-12-01T09:59:00Z"}}},
     "already_rotated", "already rotated by another run (at 2026-12-01T09:59:00Z) while this one started: nothing to do",
     "none", ["current"]),
    ("would rotate", {"check_mode": True}, "would_rotate", "would rotate (forced)", "plan", ["current", "plan"]),
    ("would resume", {"check_mode": True, "stage_found": "stored", "resume_from": "deploy"}, "would_resume",
     "would resume at deploy (forced)", "plan", ["current", "plan"]),
    ("check mode, up to date", {"check_mode": True, "resume_from": "none", "age_seconds": 60}, "up_to_date",
     "up to date: 1m old, max_age 30d", "none", ["current"]),
]


@pytest.mark.parametrize("name,changes,word,text,stage,keys", SHAPES, ids=[row[0] for row in SHAPES])
def test_every_shape(name, changes, word, text, stage, keys):
    out = summary.report(facts(**changes))
    assert out["stats"]["result"] == word, name
    assert out["stats"]["changed"] is (word in ("rotated", "resumed"))
    assert out["summary"]["result"] == text and out["summary"]["stage"] == out["stats"]["stage"] == stage
    assert sorted(out["summary"]) == sorted(["key", "provider", "vault", "result", "stage", "lease"] + keys)
    assert ("waiting" in out["stats"]) is (word == "waiting")
    json.dumps(out)  # plain data, as set_stats and the closing table need


def test_the_shapes_cover_every_result_word():
    assert {row[2] for row in SHAPES} == set(rotation.RESULT_WORDS)


def test_the_key_in_use_when_nothing_was_done():
    # the record describes the key Vault serves: its ids are reported
    out = summary.report(facts(resume_from="none", record={"fingerprint": OLD, "key_id": "k-old", "rotation_id": "r1",
                                                           "previous_key_id": "k-0", "previous_state": "deleted"}))
    assert out["summary"]["current"] == {"key_id": "k-old", "fingerprint": OLD, "vault_version": 1}
    assert (out["stats"]["key_id"], out["stats"]["previous_key_id"], out["stats"]["previous_state"],
            out["stats"]["rotation_id"]) == ("k-old", "k-0", "deleted", "r1")
    # a record about another key (the key was replaced outside the role) is not trusted: the id the plan
    # found for the key in use (adopted by its hint) is shown, and no rotation of the other key
    for check_mode in (False, True):
        out = summary.report(facts(resume_from="none", check_mode=check_mode,
                                   record={"fingerprint": OTHER, "key_id": "k-x", "rotation_id": "r9"}))
        assert out["summary"]["current"]["key_id"] == out["stats"]["key_id"] == "k-old"
        assert out["stats"]["rotation_id"] == ""
        out = summary.report(facts(resume_from="none", check_mode=check_mode, old_key_id="", old_fingerprint="",
                                   record={"fingerprint": OTHER, "key_id": "k-x"}))
        assert out["summary"]["current"]["key_id"] == out["stats"]["key_id"] == ""
    out = summary.report(facts(resume_from="none", record={}, old_key_id="k-hint"))
    assert out["summary"]["current"]["key_id"] == out["stats"]["key_id"] == "k-hint"
    out = summary.report(facts(resume_from="none", record={}, old_key_id="k-hint", old_fingerprint=OTHER))
    assert out["summary"]["current"]["key_id"] == out["stats"]["key_id"] == ""


def test_another_runs_rotation_is_reported_as_vault_serves_it():
    lease_secret = {"current_version": 2, "fingerprints": {"api_key": NEW},
                    "custom_metadata": {"key_id": "k-other", "rotated_at": "t", "rotation_id": "r2", "previous_key_id": "k-old"}}
    out = summary.report(facts(lease_outcome="already_rotated", lease_secret=lease_secret))
    assert out["summary"]["current"] == {"key_id": "k-other", "fingerprint": NEW, "vault_version": 2}
    assert (out["stats"]["key_id"], out["stats"]["fingerprint"], out["stats"]["vault_version"],
            out["stats"]["rotation_id"], out["stats"]["previous_key_id"]) == ("k-other", NEW, 2, "r2", "k-old")


@pytest.mark.parametrize("provider,state,retire", [
    ("openrouter", "disabled", "k-old -> disabled"),
    ("openai", "disabled", "k-old -> active until cleanup"),
    ("anthropic", "inactive", "k-old -> inactive"),
])
def test_the_plan_in_check_mode(provider, state, retire):
    plan = summary.report(facts(check_mode=True, provider=provider, retire_state=state))["summary"]["plan"]
    assert plan == {"create": "app-key-20261201100000-ab12", "store_as_vault_version": 2,
                    "verify": "provider probe, 3 consecutive successes", "retire": retire}


def test_the_plan_names_the_health_url_and_an_unknown_previous_key():
    plan = summary.report(facts(check_mode=True, resume_from="deploy", stage_found="stored", old_key_id="",
                                health_url="https://app.example/healthz/key",
                                health_url_shown="https://app.example/healthz/key"))["summary"]["plan"]
    assert plan["create"] == "no (already created)"
    assert plan["verify"] == "provider probe and https://app.example/healthz/key, 3 consecutive successes"
    assert plan["retire"] == "nothing (previous key unknown)"


def test_what_was_revoked_and_what_stays_active():
    out = summary.report(facts(previous_state="active", provider="openai", stale_key_ids=["k-s1", "k-s2"],
                               stale_kept=["k-s2"], orphans_revoked=["k-orphan"]))["summary"]
    assert out["revoked"] == ["k-s1 deleted", "k-orphan (orphan of an interrupted run) deleted"]
    assert out["left_active"] == ["k-old until cleanup deletes it after 7d",
                                  "k-s2 (the provider refused to delete it: see the warning)"]
    out = summary.report(facts(previous_state="active", old_key_id=""))["summary"]
    assert out["left_active"] == [] and out["revoked"] == []


def test_probes_of_tasks_that_did_not_run():
    probes = summary.report(facts(preverify=None, verify_probe={"skipped": True}, verify_health=None))["summary"]["probes"]
    assert (probes["pre_verify_attempts"], probes["verify_attempts"], probes["health_attempts"],
            probes["consecutive_successes"]) == (0, 0, 0, 0)
    probes = summary.report(facts(preverify={"skipped": True}, verify_probe={"changed": False},
                                  verify_health={"attempts": 5}))["summary"]["probes"]
    # a task that ran without retrying made one attempt; a skipped pre-verify still counts as one
    assert (probes["pre_verify_attempts"], probes["verify_attempts"], probes["health_attempts"]) == (1, 1, 5)


@pytest.mark.parametrize("name,changes,lease", [
    ("no lease taken (check mode)", {"lease": None}, None),
    ("lease task skipped", {"lease": {"skipped": True}}, None),
    ("released", {}, {"released": True, "note": "", "taken_over_from": "", "taken_over_because": ""}),
    ("taken over from a dead run", {"lease_taken_over": "run-0", "lease_decision": {"outcome": "dead"}},
     {"released": True, "note": "", "taken_over_from": "run-0", "taken_over_because": "dead"}),
    ("release refused", {"lease_released": {"failed": True, "msg": "the lease changed"}},
     {"released": False, "note": "not released (the lease changed): it expires after rotate_lease_ttl",
      "taken_over_from": "", "taken_over_because": ""}),
    ("release never ran", {"lease_released": None},
     {"released": False, "note": "not released (lost): it expires after rotate_lease_ttl",
      "taken_over_from": "", "taken_over_because": ""}),
    ("release skipped", {"lease_released": {"skipped": True}},
     {"released": False, "note": "not released (lost): it expires after rotate_lease_ttl",
      "taken_over_from": "", "taken_over_because": ""}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_lease_line(name, changes, lease):
    out = summary.report(facts(**changes))["summary"]
    if lease is None:
        assert "lease" not in out, name
    else:
        assert out["lease"] == dict(lease, path="secret/apps/app.lock", owner="run-1"), name


def test_missing_facts_never_raise():
    out = summary.report({"key": "k", "resume_from": "none"})
    assert out["stats"]["result"] == "up_to_date" and out["summary"]["current"]["key_id"] == ""
    assert summary.report({})["stats"]["vault_path"] == "/"
