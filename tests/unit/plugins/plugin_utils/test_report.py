# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status rows, the next action, the reports and the closing tables (plugins/plugin_utils/report.py)."""

from __future__ import annotations

import html.parser

import pytest

from ansible_collections.apikeys.rotation.plugins.plugin_utils import report

NOW = report.parse_time("2026-12-02T12:00:00Z")
DAY = 86400
OLD, NEW, STAGED = "sha256:000000000001", "sha256:000000000002", "sha256:000000000003"


def at(seconds_ago: float) -> str:
    import datetime  # pylint: disable=import-outside-toplevel
    return datetime.datetime.fromtimestamp(NOW - seconds_ago, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")


def secret(record=None, fingerprint=NEW, written_ago=DAY):
    return {"exists": True, "current_version": 2, "version": 2, "fingerprints": {"api_key": fingerprint},
            "versions": {"2": {"created_time": at(written_ago)}}, "custom_metadata": record or {}}


def facts(provider="openrouter", record=None, probe=None, staged=None, **more):
    base = {"provider": provider, "vault": "secret/apps/x", "secret": secret(record, **more),
            "probe": {"live": True} if probe is None else probe, "staged": staged, "max_age": "30d",
            "max_age_seconds": 30 * DAY, "grace_period": "7d", "grace_seconds": 7 * DAY,
            "wait_limit": "7d", "wait_limit_seconds": 7 * DAY, "staging_path": "secret/apps/x-next"}
    return base


# (what the facts hold) -> (state, start of the next action)
NEXT_ACTION_TABLE = [
    ("fresh key, nothing pending", facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(DAY)[:19] + "Z"}),
     "ok", "due in 29d 0h 0m"),
    ("due", facts(record={"rotated_at": at(31 * DAY)[:19] + "Z"}), "due", "rotate: due since"),
    ("never recorded: age from the version's write time", facts(written_ago=40 * DAY), "due", "rotate: due since"),
    ("stage stored, Vault serves the new key", facts(record={"stage": "stored", "fingerprint": NEW}), "pending",
     "resume at verify (stage stored)"),
    ("stage verified", facts(record={"stage": "verified", "fingerprint": NEW}), "pending", "resume at retire"),
    ("a run holds the lease", dict(facts(record={"stage": "stored", "fingerprint": NEW}), lease={
        "state": "held", "owner": "o1", "controller": "ctl", "job": "42", "expires_at": "2026-12-02T12:10:00Z",
        "expires_epoch": str(NOW + 600), "boot_id": "another-boot"}), "pending",
     "in progress: run o1 on ctl (AWX job 42) holds the lease until 2026-12-02T12:10:00Z"),
    ("an expired lease, a stage left", dict(facts(record={"stage": "stored", "fingerprint": NEW}), lease={
        "state": "held", "owner": "o1", "expires_epoch": str(NOW - 1)}), "pending", "resume at verify"),
    ("an expired lease, nothing left", dict(facts(), lease={"state": "held", "owner": "o1", "expires_epoch": str(NOW - 1)}),
     "ok", "due in"),
    ("a released lease", dict(facts(), lease={"state": "released", "owner": "o1"}), "ok", "due in"),
    ("stage creating, nothing stored", facts(record={"stage": "creating", "fingerprint": NEW}), "pending", "resume at create"),
    ("stage creating, the new key stored", facts(record={"stage": "creating", "fingerprint": OLD, "pending_fingerprint": NEW}),
     "pending", "resume at store"),
    ("stage stored, another writer", facts(record={"stage": "stored", "fingerprint": OLD}), "failed", "another writer"),
    ("unknown stage", facts(record={"stage": "frobbed", "fingerprint": NEW}), "failed", "unknown stage frobbed"),
    ("not live", facts(probe={"live": False, "reason": "the key was rejected"}), "failed", "the key in Vault is not live"),
    ("previous key in its grace period",
     facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(DAY)[:19] + "Z", "retired_at": at(DAY)[:19] + "Z",
                   "previous_key_id": "k1", "previous_state": "disabled"}), "ok", "previous key k1 deletable after 2026-12-08 12:00"),
    ("previous key past its grace period",
     facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(8 * DAY)[:19] + "Z",
                   "retired_at": at(8 * DAY)[:19] + "Z", "previous_key_id": "k1", "previous_state": "active"}),
     "pending", "run cleanup: previous key k1 deletable since 2026-12-01 12:00"),
    ("previous key deleted", facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(DAY)[:19] + "Z",
                                           "previous_key_id": "k1", "previous_state": "deleted"}), "ok", "due in"),
    ("stale keys", facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(DAY)[:19] + "Z",
                                 "stale_key_ids": "k0, k-1"}), "pending", "run cleanup: 2 stale key(s)"),
    ("anthropic due, new Console key staged", facts("anthropic", record={"rotated_at": at(31 * DAY)[:19] + "Z"},
                                                    staged={"fingerprints": {"api_key": STAGED}}), "due", "rotate: due since"),
    ("anthropic due, staged copy is the key in use", facts("anthropic", record={"rotated_at": at(31 * DAY)[:19] + "Z"},
                                                           staged={"fingerprints": {"api_key": NEW}}),
     "waiting", "waiting for a new Console key at secret/apps/x-next (rotate fails after 2026-12-08 12:00)"),
    ("anthropic due, nothing staged, past the limit", facts("anthropic", record={"rotated_at": at(40 * DAY)[:19] + "Z"}),
     "failed", "waiting for a new Console key at secret/apps/x-next since 2026-11-22 12:00, past its limit 7d"),
]


@pytest.mark.parametrize("what, given, state, action", NEXT_ACTION_TABLE, ids=[r[0] for r in NEXT_ACTION_TABLE])
def test_next_action(what, given, state, action):
    row = report.status_row("k", given, NOW)
    assert (row["state"], row["next_action"][:len(action)]) == (state, action), what


def test_a_lease_whose_holder_died_here_is_named(monkeypatch):
    here = report.rotation.Holder(controller="ctl", boot_id="b1", pid="1", pid_start="1")
    monkeypatch.setattr(report.rotation.Holder, "here", classmethod(lambda cls: here))
    # pid 4242 with a start time no process has: gone
    lease = {"state": "held", "owner": "o1", "controller": "ctl", "boot_id": "b1", "pid": "4242", "pid_start": "9",
             "expires_epoch": str(NOW + 600)}
    row = report.status_row("k", dict(facts(), lease=lease), NOW)
    assert (row["state"], row["next_action"]) == ("pending", "run rotate: it releases the lease of run o1 on ctl, which died")


def test_row_of_a_secret_that_cannot_be_read():
    row = report.status_row("k", dict(facts(), secret={"failed": True, "msg": "permission denied"}), NOW)
    assert row["state"] == "failed" and row["next_action"] == "fix: permission denied" and row["live"] is None
    row = report.status_row("k", dict(facts(), secret={"exists": False}), NOW)
    assert row["last_failure"] == "the secret does not exist"


def test_row_fields_minute_precision_and_failures():
    given = facts(record={"key_id": "k2", "fingerprint": NEW, "rotated_at": at(3 * DAY + 4 * 3600 + 12 * 60 + 30)[:19] + "Z",
                          "stage": "stored", "rotation_id": "r1", "rotation_started_at": at(600)[:19] + "Z"},
                  probe={"live": False, "reason": "HTTP 401"})
    row = report.status_row("k", given, NOW)
    assert row["age"] == "3d 4h 12m" and row["age_seconds"] == 3 * DAY + 4 * 3600 + 12 * 60 + 30
    assert row["due_at"] == "2026-12-29 07:47" and row["due_in"] == "due in 26d 19h 47m"
    assert row["last_failure"] == ("now: the key in Vault is not live at openrouter: HTTP 401; "
                                   "rotation r1 (started 2026-12-02 11:50) stopped at stage stored")
    recorded = report.status_row("k", facts(record={"key_id": "k2", "fingerprint": NEW,
                                                    "last_failure": "2026-12-01T10:00:00Z rotation r0: verify failed"}), NOW)
    assert recorded["last_failure"] == "2026-12-01T10:00:00Z rotation r0: verify failed" and recorded["state"] == "ok"
    # a record written for another key names no key id
    other = report.status_row("k", facts(record={"key_id": "k1", "fingerprint": OLD}), NOW)
    assert other["key_id"] == ""


def test_status_lines_table_counts_and_failures():
    rows = [report.status_row("a-key", facts(), NOW),
            report.status_row("b-key", facts(probe={"live": False, "reason": "rejected"}), NOW)]
    lines = report.status_lines(rows)
    assert lines[0].split()[:2] == ["KEY", "PROVIDER"]
    assert lines[1].startswith("a-key") and lines[2].startswith("b-key") and " NO " in lines[2]
    assert lines[3] == "2 key(s): 1 ok, 1 failed"
    assert lines[4].startswith("b-key last failure: now: the key in Vault is not live")
    # one column start for every row
    start = lines[0].index("NEXT ACTION")
    assert lines[1][start:].startswith("due in") and lines[2][start:].startswith("the key in Vault")


class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"

    def handle_data(self, data):
        self.cells.append(data)


def test_html_escapes_every_value_and_markdown_escapes_pipes():
    hostile = report.status_row("<script>alert(1)</script>", dict(facts(), vault="secret/a|b"), NOW)
    page = report.status_report([hostile], "out.HTML", "2026-12-02 12:00")
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    parsed = Text()
    parsed.feed(page)
    assert parsed.scripts == 0 and "<script>alert(1)</script>" in parsed.cells
    markdown = report.status_report([hostile], "out.md", "2026-12-02 12:00")
    row = [line for line in markdown.splitlines() if line.startswith("| <script>")][0]
    assert "secret/a\\|b" not in row  # the vault path is not a Markdown column
    assert row.count(" | ") == len(report.STATUS_COLUMNS)


CLOSING_TABLE = [
    ("rotate", {"result": "rotated", "key_id": "k2", "fingerprint": NEW, "vault_version": 2, "previous_key_id": "k1",
                "previous_state": "disabled"}, "rotated", "previous key k1 disabled: cleanup deletes it"),
    ("rotate", {"result": "up_to_date", "key_id": "k1", "fingerprint": OLD}, "nothing (up to date)", "-"),
    ("rotate", {"result": "would_rotate"}, "would rotate (check mode)", "run without --check"),
    ("rotate", {"result": "waiting", "waiting": "stage a key at secret/x-next"}, "nothing (waiting for a new Console key)",
     "stage a key at secret/x-next"),
    ("rollback", {"result": "rolled_back", "previous_fingerprint": NEW, "re_enabled": True},
     "rolled back from %s, re-enabled the key" % NEW, "rotate again"),
    ("cleanup", {"result": "deleted", "deleted_key_ids": ["k1"], "kept": ""}, "deleted k1", "-"),
    ("cleanup", {"result": "would_delete", "would_delete_key_ids": ["k1", "k0"]}, "would delete k1, k0 (check mode)", "-"),
    ("cleanup", {"result": "nothing_to_delete", "kept": "previous key k1 is inside its grace period (7d)"},
     "nothing deleted", "previous key k1 is inside its grace period (7d)"),
    ("cleanup", {"result": "deleted", "deleted_key_ids": [], "kept_active_key_ids": ["k1"]}, "deleted ",
     "kept active (the provider refused): k1"),
    ("probe", {"live": True, "application_fingerprint": NEW}, "live, application serves it", "-"),
    ("probe", {"live": False, "reason": "provider: rejected", "unfinished_stage": "stored"}, "NOT LIVE: provider: rejected",
     "rotation unfinished at stage stored: run rotate"),
]


@pytest.mark.parametrize("kind, entry, done, left", CLOSING_TABLE)
def test_closing_lines(kind, entry, done, left):
    lines = report.closing_lines(kind, {"the-key": dict(entry, provider="openai"), "broken-key": None})
    header, row, failed, last = lines
    assert header.split()[:3] == ["KEY", "PROVIDER", "DONE"]
    assert row[header.index("DONE"):].startswith(done)
    assert row[header.index("LEFT TO DO"):].startswith(left)
    assert "FAILED: see its error above" in failed and "run %s again" % kind in failed
    assert last == "%s: 2 key(s), 1 FAILED" % kind


@pytest.mark.parametrize("age_days, waiting", [(30, True), (36.9, True), (37, False), (40, False)])
def test_console_key_wait_ends_console_key_wait_past_max_age(age_days, waiting):
    wait = report.console_key_wait(age_days * DAY, 30 * DAY, 7 * DAY, NOW)
    assert wait["waiting"] is waiting
    assert wait["due_at"] == report.time_text(NOW - age_days * DAY + 30 * DAY)
    assert wait["fails_from"] == report.time_text(NOW - age_days * DAY + 37 * DAY)


def test_facts_of_a_fact_or_one_of_its_fields():
    from ansible_collections.apikeys.rotation.plugins.filter.report import facts_of  # pylint: disable=import-outside-toplevel

    hostvars = {"a": {"rotate_rotation_report": {"summary": {"x": 1}, "stats": {"result": "rotated"}}},
                "b": {"rotate_rotation_report": "not a dict"}, "c": {}}
    hosts = ["a", "b", "c", "gone"]
    assert facts_of(hosts, hostvars, "rotate_rotation_report", "stats") == {
        "a": {"result": "rotated"}, "b": None, "c": None, "gone": None}
    assert facts_of(hosts, hostvars, "rotate_rotation_report") == {
        "a": hostvars["a"]["rotate_rotation_report"], "b": "not a dict", "c": None, "gone": None}
