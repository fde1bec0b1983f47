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
        "created_ts": 1000.0, "preverify": {"attempts": 2, "answered_at": 1000.4},
        "stored_ts": 1001.0, "verify_probe": {"attempts": 4, "live": True, "probes": 3, "successes": 3,
                                              "answered_at": 1002.2},
        "verify_health": {"skipped": True},
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


# (what the run did, fact changes, pre_verify_seconds, seconds_from_store_to_verified)
TIMES = [
    ("the base: verify ends with its last confirming probe", {}, 0.4, 1.2),
    ("one success: no confirming probe", {"verify_probe": {"live": True, "answered_at": 1001.5}}, 0.4, 0.5),
    ("the application's last confirming probe ends verify",
     {"verify_health": {"live": True, "answered_at": 1004.04}}, 0.4, 3.0),
    ("resumed at deploy: nothing created or stored by this run",
     {"created_ts": None, "preverify": None, "stored_ts": None}, 0, 0),
    ("the report gets an empty fact", {"created_ts": "", "stored_ts": ""}, 0, 0),
    ("no check ran", {"verify_probe": {"skipped": True}}, 0.4, 0),
    ("a probe result without answered_at (a failed task)", {"preverify": {"failed": True, "msg": "x"}}, 0, 1.2),
]


@pytest.mark.parametrize("name,changes,preverify_seconds,verify_seconds", TIMES, ids=[case[0] for case in TIMES])
def test_seconds_from_the_probes_answers(name, changes, preverify_seconds, verify_seconds):
    probes = summary.report(facts(**changes))["summary"]["probes"]
    assert (probes["pre_verify_seconds"], probes["seconds_from_store_to_verified"]) == (preverify_seconds, verify_seconds)


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


# -- why verify did not prove the new key ---------------------------------------------------

def failure_facts(**results):
    base = {"new_fingerprint": NEW, "provider": "openrouter", "verify_successes": "3",
            "health_url_shown": "https://app.example/keyz", "verify_probe": None, "verify_health": None,
            "failed_task": None, "failed_msg": None}
    base.update(results)
    return base


LIVE = {"live": True, "attempts": 1}
# (name, verify's results) -> the sentence
VERIFY_FAILURE_TABLE = [
    ("the probe never saw the key live", {"verify_probe": {"live": False, "attempts": 30, "reason": "HTTP 401"}},
     "the key in Vault (%s) did not authenticate at openrouter after 30 probe(s) (last: HTTP 401)" % NEW),
    ("a probe that gave up without a reason", {"verify_probe": {"live": False, "failed": True, "msg": "timed out"}},
     "the key in Vault (%s) did not authenticate at openrouter after 1 probe(s) (last: timed out)" % NEW),
    ("a probe with nothing to say", {"verify_probe": {"failed": True}},
     "the key in Vault (%s) did not authenticate at openrouter after 1 probe(s) (last: no answer)" % NEW),
    ("the probe could not read the key from Vault",
     {"verify_probe": {"failed": True, "vault_error": "permission_denied", "msg": "Permission denied: could not read"}},
     "the key to verify could not be read from Vault: Permission denied: could not read"),
    ("Vault holds another key than the one to verify",
     {"verify_probe": {"failed": True, "key_mismatch": True, "fingerprint": OLD, "msg": "holds the key " + OLD}},
     "the key to verify could not be read from Vault: holds the key " + OLD),
    ("the probe's first_failure, without the count of consecutive probes in its reason",
     {"verify_probe": {"live": False, "attempts": 30, "probes": 1, "successes": 0, "first_failure": "HTTP 401",
                       "reason": "HTTP 401 (probe 1 of 3, after 0 successes)"}},
     "the key in Vault (%s) did not authenticate at openrouter after 30 probe(s) (last: HTTP 401)" % NEW),
    ("live, then a confirming probe failed",
     {"verify_probe": {"failed": True, "live": False, "attempts": 2, "probes": 3, "successes": 2,
                       "first_failure": "HTTP 401 on probe 3"}},
     "the key in Vault (%s) went live, then failed confirming probe 2 of 2 after 1 consecutive success(es) "
     "(HTTP 401 on probe 3)" % NEW),
    ("live, then the first confirming probe failed, with an empty first_failure: the msg",
     {"verify_probe": {"failed": True, "live": False, "probes": 2, "successes": 1, "first_failure": "",
                       "msg": "not live"}},
     "the key in Vault (%s) went live, then failed confirming probe 1 of 2 after 0 consecutive success(es) (not live)"
     % NEW),
    ("the application never reported the key",
     {"verify_probe": LIVE, "verify_health": {"live": False, "attempts": 5, "fingerprint": OLD, "reason": "old key"}},
     "the application at https://app.example/keyz did not report the key %s live after 5 probe(s) "
     "(it reported %s, old key)" % (NEW, OLD)),
    ("the application reported no key at all",
     {"verify_probe": LIVE, "verify_health": {"failed": True, "msg": "connection refused"}},
     "the application at https://app.example/keyz did not report the key %s live after 1 probe(s) "
     "(it reported no key, connection refused)" % NEW),
    ("a skipped health check is not a failure",
     {"verify_probe": LIVE, "verify_health": {"skipped": True}, "failed_task": "Deploy | run the hook",
      "failed_msg": "hook failed"},
     "Deploy | run the hook failed: hook failed"),
    ("the application went back to the old key while confirming",
     {"verify_probe": LIVE, "verify_health": {"failed": True, "live": False, "probes": 2, "successes": 1,
                                              "first_failure": "reported " + OLD}},
     "the application at https://app.example/keyz reported the new key live, then not in confirming probe 1 of 2 "
     "(reported %s)" % OLD),
    ("a failure before any check (the deploy hook)", {"failed_task": "Deploy | run deploy_tasks", "failed_msg": "exit 2"},
     "Deploy | run deploy_tasks failed: exit 2"),
    ("nothing known", {}, "deploy/verify failed: no message"),
]


@pytest.mark.parametrize("name,results,expected", VERIFY_FAILURE_TABLE, ids=[row[0] for row in VERIFY_FAILURE_TABLE])
def test_verify_failure(name, results, expected):
    assert summary.verify_failure(failure_facts(**results)) == expected, name


# -- a rollback's report -------------------------------------------------------------------

def rollback_facts(**changes):
    """A rollback of an OpenRouter key from version 2 (k-new) back to the key of version 1 (k-old)."""
    base = {
        "key": "app-key", "check_mode": False, "done": False, "provider": "openrouter", "vault_mount": "secret",
        "vault_path": "apps/app", "current_version": 2, "serving": OLD + "\n",
        "record": {"key_id": "k-new", "fingerprint": NEW, "previous_key_id": "k-old", "previous_fingerprint": OLD,
                   "previous_version": "1"},
        "plan": {"from_key_id": "k-new", "from_fingerprint": NEW, "to_fingerprint": OLD},
        "reenabled": {"changed": True}, "rolled_back": {"changed": True, "version": 3}, "run_timing": TIMING,
    }
    base.update(changes)
    return base


def test_rollback_report_of_a_rollback():
    reported = summary.rollback_report(rollback_facts())
    assert reported["summary"] == {
        "key": "app-key", "result": "rolled back", "serving": OLD + "\n", "vault_version": 3, "key_id": "k-old",
        "re_enabled": True, "rolled_back_from": "k-new (%s), left active" % NEW}
    assert reported["stats"] == dict(
        TIMING, provider="openrouter", vault_path="secret/apps/app", result="rolled_back", changed=True, key_id="k-old",
        fingerprint=OLD, vault_version=3, previous_key_id="k-new", previous_fingerprint=NEW, re_enabled=True,
        check_mode=False)


@pytest.mark.parametrize("reenabled,says", [({"changed": True}, "re-enable k-old, "), ({"changed": False}, ""),
                                            ({"skipped": True}, "")])
def test_rollback_report_in_check_mode_says_what_it_would_do(reenabled, says):
    reported = summary.rollback_report(rollback_facts(check_mode=True, reenabled=reenabled, rolled_back={"changed": True}))
    assert reported["summary"]["result"] == (
        "would roll back: %swrite KV version 1 back as the newest, deploy and verify it" % says)
    assert reported["summary"]["re_enabled"] is False and reported["summary"]["vault_version"] == 2
    stats = reported["stats"]
    assert (stats["result"], stats["changed"], stats["check_mode"], stats["vault_version"]) == ("would_roll_back", False, True, 2)


def test_rollback_report_of_a_rollback_done_before():
    """A second run does not swap back: it reports the record as the first run left it."""
    record = {"key_id": "k-old", "fingerprint": OLD, "previous_key_id": "k-new", "previous_fingerprint": NEW,
              "previous_version": "2", "rolled_back_from": "k-new"}
    reported = summary.rollback_report(rollback_facts(done=True, record=record, current_version=3, reenabled=None,
                                                      rolled_back={"skipped": True}))
    assert reported["summary"]["result"] == "already rolled back: verified again"
    assert (reported["summary"]["key_id"], reported["summary"]["rolled_back_from"]) == ("k-old", "k-new")
    assert reported["summary"]["vault_version"] == 3 and reported["summary"]["re_enabled"] is False
    stats = reported["stats"]
    assert (stats["result"], stats["changed"], stats["key_id"], stats["previous_key_id"], stats["vault_version"]) == (
        "already_rolled_back", False, "k-old", "k-new", 3)


def stop_facts(**changes):
    base = {"previous_key_id": "k-old", "previous_fingerprint": OLD, "provider": "openrouter", "probe": None,
            "reenabled": None, "failed_msg": None, "current_fingerprint": NEW, "current_version": 2, "check_mode": False}
    base.update(changes)
    return base


# (name, changes) -> the message
ROLLBACK_FAILURE_TABLE = [
    ("the previous key does not authenticate, after it was re-enabled",
     {"probe": {"failed": True, "live": False, "reason": "HTTP 401"}, "reenabled": {"changed": True}},
     "rollback stopped before Vault was changed: the previous key k-old (%s) does not authenticate at openrouter "
     "(HTTP 401). Vault still serves %s (version 2). The previous key was re-enabled; disable it again if it should "
     "stay off." % (OLD, NEW)),
    ("the previous key does not authenticate, it was active already",
     {"probe": {"failed": True, "msg": "timed out"}, "reenabled": {"skipped": True}},
     "rollback stopped before Vault was changed: the previous key k-old (%s) does not authenticate at openrouter "
     "(timed out). Vault still serves %s (version 2)." % (OLD, NEW)),
    ("re-enabling it failed", {"failed_msg": "HTTP 500 from the provider", "reenabled": {"failed": True}},
     "rollback stopped before Vault was changed: re-enabling the previous key k-old failed (HTTP 500 from the provider). "
     "Vault still serves %s (version 2)." % NEW),
    ("a skipped probe is not the reason", {"probe": {"skipped": True}},
     "rollback stopped before Vault was changed: re-enabling the previous key k-old failed (no message). "
     "Vault still serves %s (version 2)." % NEW),
    ("check mode re-enables nothing", {"probe": {"failed": True, "reason": "HTTP 401"}, "reenabled": {"changed": True},
                                       "check_mode": True},
     "rollback stopped before Vault was changed: the previous key k-old (%s) does not authenticate at openrouter "
     "(HTTP 401). Vault still serves %s (version 2)." % (OLD, NEW)),
]


@pytest.mark.parametrize("name,changes,expected", ROLLBACK_FAILURE_TABLE, ids=[row[0] for row in ROLLBACK_FAILURE_TABLE])
def test_rollback_failure(name, changes, expected):
    assert summary.rollback_failure(stop_facts(**changes)) == expected, name


# -- the probe entry point's report ----------------------------------------------------------

def probe_facts(**changes):
    """An OpenRouter key at version 2 whose record names it, live at the provider, no health endpoint."""
    base = {
        "key": "app-key", "provider": "openrouter", "vault_mount": "secret", "vault_path": "apps/app",
        "active": {"exists": True, "current_version": 2, "fingerprints": {"api_key": NEW},
                   "custom_metadata": {"key_id": "k-new", "fingerprint": NEW}},
        "probe": {"live": True, "attempts": 1, "latency_ms": 12, "restricted": False}, "health": {"skipped": True},
        "health_url_shown": "https://app.example/keyz", "check_mode": False, "run_timing": TIMING,
    }
    base.update(changes)
    return base


def test_probe_report_of_a_live_key():
    reported = summary.probe_report(probe_facts())
    assert reported["live"] is True and reported["message"] == ""
    assert reported["summary"] == {
        "key": "app-key", "provider": "openrouter", "vault": "secret/apps/app version 2", "key_id": "k-new",
        "fingerprint": NEW, "live": True, "restricted": False, "latency_ms": 12, "application": "no health_url",
        "unfinished_stage": "none"}
    assert reported["stats"] == dict(
        TIMING, provider="openrouter", vault_path="secret/apps/app", vault_version=2, key_id="k-new", fingerprint=NEW,
        application_fingerprint="", unfinished_stage="", check_mode=False, live=True, provider_live=True, reason="")


def test_probe_report_names_no_key_id_the_record_does_not_describe():
    """Someone wrote another key to Vault: the record's key id is not that key's."""
    reported = summary.probe_report(probe_facts(active={"current_version": 3, "fingerprints": {"api_key": OTHER},
                                                        "custom_metadata": {"key_id": "k-new", "fingerprint": NEW}}))
    assert reported["stats"]["key_id"] == "" and reported["summary"]["key_id"] == "k-new"


# (name, changes) -> live at the provider, the stats' reason, the message
PROBE_FAILURE_TABLE = [
    ("refused at the provider", {"probe": {"live": False, "failed": True, "attempts": 3, "reason": "HTTP 401"}},
     False, "provider: HTTP 401", "NOT LIVE. The key in Vault (%s, version 2) is not live at openrouter: HTTP 401." % NEW),
    ("a reason that is a sentence gets no second period",
     {"probe": {"live": False, "reason": "the key was rejected: HTTP 401 - User not found."}}, False,
     "provider: the key was rejected: HTTP 401 - User not found.",
     "NOT LIVE. The key in Vault (%s, version 2) is not live at openrouter: the key was rejected: HTTP 401 - User not "
     "found." % NEW),
    ("no answer from the provider", {"probe": {"failed": True, "msg": "timed out"}},
     False, "provider: timed out", "NOT LIVE. The key in Vault (%s, version 2) is not live at openrouter: timed out." % NEW),
    ("the application serves the old key",
     {"health": {"live": False, "failed": True, "fingerprint": OLD, "reason": "another key"}},
     True, "application serves %s: another key" % OLD,
     "NOT LIVE. The key in Vault (%s) is live at openrouter, but the application at https://app.example/keyz reports %s "
     "(another key): run its deploy hook." % (NEW, OLD)),
    ("the application does not answer", {"health": {"failed": True, "msg": "connection refused"}},
     True, "application serves no key: connection refused",
     "NOT LIVE. The key in Vault (%s) is live at openrouter, but the application at https://app.example/keyz reports "
     "no key (connection refused): run its deploy hook." % NEW),
    ("an unfinished rotation is named",
     {"probe": {"live": False, "reason": "HTTP 401"},
      "active": {"current_version": 2, "fingerprints": {"api_key": NEW},
                 "custom_metadata": {"key_id": "k-new", "fingerprint": NEW, "stage": "stored"}}},
     False, "provider: HTTP 401",
     "NOT LIVE. The key in Vault (%s, version 2) is not live at openrouter: HTTP 401. A rotation is unfinished "
     "(stage=stored): run the rotate playbook to finish it." % NEW),
]


@pytest.mark.parametrize("name,changes,provider_live,reason,message", PROBE_FAILURE_TABLE,
                         ids=[row[0] for row in PROBE_FAILURE_TABLE])
def test_probe_report_of_a_key_that_is_not_live(name, changes, provider_live, reason, message):
    reported = summary.probe_report(probe_facts(**changes))
    assert reported["live"] is False, name
    assert (reported["stats"]["live"], reported["stats"]["provider_live"], reported["stats"]["reason"]) == (
        False, provider_live, reason)
    assert reported["message"] == message


def test_probe_report_with_a_health_endpoint_that_reports_the_key():
    reported = summary.probe_report(probe_facts(health={"live": True, "fingerprint": NEW, "attempts": 1}))
    assert reported["live"] is True
    assert reported["summary"]["application"] == "serves " + NEW and reported["stats"]["application_fingerprint"] == NEW
