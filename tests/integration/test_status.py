# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status playbook: one table for the fleet, the AWX hand-off, the Markdown and HTML reports.

Each key is put in a known state out of band (plain hvac, the emulator's control API); the
test then reads what the playbook says of it, and opens the HTML report in headless Chromium.
"""

from __future__ import annotations

import datetime
import html.parser
import os
import shutil
import subprocess
import time

import pytest

from harness import assert_no_secret
from rotation_world import ROTATE, Services, World, fp, inventory

STATUS = "apikeys.rotation.status"


def iso(seconds_ago: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture()
def fleet(openbao, emulator, ansible, kv_path):
    """Seven keys, each in a state the status view must tell apart."""
    services = Services(openbao, emulator)
    worlds = {
        # rotated by this test (below): its previous key waits for the end of its grace period
        "rotated": World(services, "openrouter", "st-rotated", kv_path),
        # written an hour ago, max_age 30d: due in about 29 days
        "fresh": World(services, "openai", "st-fresh", kv_path),
        # due, but no new Console key staged: waiting, inside the limit
        "waiting": World(services, "anthropic", "st-waiting", kv_path, max_age="1d", console_key_wait="7d"),
        # due and waiting for longer than its limit
        "late": World(services, "anthropic", "st-late", kv_path, console_key_wait="1d"),
        # a rotation that stopped after store
        "stored": World(services, "openrouter", "st-stored", kv_path),
        # Vault holds a key the provider rejects
        "dead": World(services, "openrouter", "st-dead", kv_path),
        # a rotation under way: another controller's run holds the lease
        "busy": World(services, "openai", "st-busy", kv_path),
    }
    rotated = ansible.run_playbook(ROTATE, inventory=inventory([worlds["rotated"]]), env=services.env)
    assert rotated.rc == 0, rotated.output
    kv = services.vault.secrets.kv.v2
    fresh = worlds["fresh"]
    kv.update_metadata(path=fresh.path, mount_point="secret", custom_metadata=dict(fresh.record(), rotated_at=iso(3600)))
    waiting = worlds["waiting"]
    kv.update_metadata(path=waiting.path, mount_point="secret", custom_metadata=dict(waiting.record(), rotated_at=iso(90000)))
    for name in ("waiting", "late"):
        # the staged copy is the key in use: no new Console key yet
        kv.create_or_update_secret(path=worlds[name].path + "-next", secret={"api_key": worlds[name].old["value"]},
                                   mount_point="secret")
    stored = worlds["stored"]
    kv.update_metadata(path=stored.path, mount_point="secret", custom_metadata=dict(
        stored.record(), stage="stored", rotation_id="20261201000000-abcd", rotation_started_at=iso(7200),
        fingerprint=fp(stored.old["value"]), previous_key_id="or-previous", previous_fingerprint="sha256:000000000000"))
    kv.create_or_update_secret(path=worlds["dead"].path, secret={"api_key": "sk-or-v1-" + "0" * 64}, mount_point="secret")
    busy = worlds["busy"]
    kv.update_metadata(path=busy.path, mount_point="secret", custom_metadata=dict(
        busy.record(), stage="stored", rotation_id="20261201000000-beef", fingerprint=fp(busy.old["value"])))
    kv.create_or_update_secret(path=busy.lock_path, mount_point="secret", secret={
        "state": "held", "owner": "run-elsewhere", "controller": "another-controller", "job": "77",
        "expires_at": iso(-600), "expires_epoch": str(int(time.time()) + 600)})
    return services, worlds


class Cells(html.parser.HTMLParser):
    """The text of each row of the table with id "status", keyed by the row's data-key."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict = {}
        self.classes: dict = {}
        self.headers: list = []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self._row = attrs["data-key"]
            self.rows[self._row] = []
            self.classes[self._row] = attrs.get("class", "")
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.headers.append(text)
            elif self._row:
                self.rows[self._row].append(text)
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def keys_of(state: dict) -> dict:
    """Every key at every provider: id, name, status (a probe only updates last_used_at)."""
    return {p: sorted((k["id"], k["name"], k["status"]) for k in state[p]["keys"]) for p in ("anthropic", "openai", "openrouter")}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: .ci/run installs the Debian package chromium")
        pytest.skip("no Chromium on this machine (Debian package chromium)")
    return found


def render(browser: str, page: str, workdir: str) -> str:
    """The DOM headless Chromium renders from the page, as a person's browser would show it."""
    profile = os.path.join(workdir, "chromium-profile")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + profile, "--dump-dom", "file://" + page]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_status_shows_every_key_and_writes_reports(fleet, ansible, tmp_path):
    services, worlds = fleet
    hosts = inventory(worlds.values())
    before = {w.host: w.metadata() for w in worlds.values()}
    state_before = services.state()
    report_md = str(tmp_path / "status.md")
    report_html = str(tmp_path / "status.html")
    result = ansible.run_playbook(STATUS, inventory=hosts, env=services.env, extra_vars={"status_report": report_md})
    assert result.rc == 0, result.output

    table = result.result("Status | every key")["result"]["msg"]
    count = next(i for i, line in enumerate(table) if line.startswith("7 key(s): "))
    lines = {line.split()[0]: line for line in table[1:count]}
    assert set(lines) == {w.host for w in worlds.values()}, table
    assert table[0].split()[:3] == ["KEY", "PROVIDER", "AGE"]
    rotated = worlds["rotated"]
    assert "previous key %s... deletable after" % rotated.old["id"][:16] in lines["st-rotated"]
    assert "disabled until" in lines["st-rotated"]
    assert "due in 29d 22h" in lines["st-fresh"] or "due in 29d 23h" in lines["st-fresh"]
    assert "waiting for a new Console key at secret/%s-next (rotate fails after" % worlds["waiting"].path in lines["st-waiting"]
    assert "past its limit 1d" in lines["st-late"]
    assert "resume at verify (stage stored)" in lines["st-stored"]
    assert " NO " in lines["st-dead"] and "not live" in lines["st-dead"]
    assert "in progress: run run-elsewhere on another-controller (AWX job 77) holds the lease until" in lines["st-busy"]
    assert any(line.startswith("7 key(s): ") and "2 failed" in line and "1 waiting" in line for line in table), table
    assert any(line.startswith("st-dead last failure: now: the key in Vault is not live") for line in table), table
    assert any(line.startswith("st-stored last failure: rotation 20261201000000-abcd") for line in table), table

    # the AWX hand-off: the same rows, with minute-precise ages
    stats = result.result("Status | hand the rows to AWX workflows")["result"]["ansible_stats"]["data"]["apikeys_rotation_status"]
    assert set(stats) == set(lines)
    assert stats["st-fresh"]["age"] in ("1h 0m", "1h 1m", "1h 2m") and stats["st-fresh"]["state"] == "ok"
    assert stats["st-waiting"]["state"] == "waiting" and stats["st-late"]["state"] == "failed"
    assert stats["st-rotated"]["key_id"] and stats["st-rotated"]["fingerprint"] == fp(rotated.value())
    assert stats["st-stored"]["stage"] == "stored" and stats["st-dead"]["live"] is False
    assert stats["st-rotated"]["live"] is True

    # Markdown, then HTML, the same rows
    with open(report_md, encoding="utf-8") as handle:
        markdown = handle.read()
    assert markdown.startswith("# API key status")
    assert sum(1 for line in markdown.splitlines() if line.startswith("| st-")) == 7
    again = ansible.run_playbook(STATUS, inventory=hosts, env=services.env, extra_vars={"status_report": report_html},
                                 check=True)
    assert again.rc == 0, again.output
    page = Cells()
    page.feed(render(chromium(), report_html, str(tmp_path)))
    assert set(page.rows) == set(lines)
    assert page.headers[:3] == ["Key", "Provider", "Vault"]
    column = {h: i for i, h in enumerate(page.headers)}
    assert page.rows["st-stored"][column["Stage"]] == "stored"
    assert page.rows["st-dead"][column["Live"]] == "NO" and page.classes["st-dead"] == "failed"
    assert page.rows["st-waiting"][column["State"]] == "waiting"
    assert page.rows["st-rotated"][column["Fingerprint"]] == fp(rotated.value())

    # read-only: Vault's metadata and the provider's keys are as they were
    assert {w.host: w.metadata() for w in worlds.values()} == before
    assert keys_of(services.state()) == keys_of(state_before)
    values = [w.old["value"] for w in worlds.values()] + [rotated.value()] + list(services.admin.values())
    for text in (result.output, again.output, markdown, open(report_html, encoding="utf-8").read()):
        assert_no_secret(text, *values)


def test_status_row_of_a_key_that_cannot_be_read(openbao, emulator, ansible, kv_path):
    services = Services(openbao, emulator)
    world = World(services, "openrouter", "st-missing", kv_path)
    services.vault.secrets.kv.v2.delete_metadata_and_all_versions(path=world.path, mount_point="secret")
    result = ansible.run_playbook(STATUS, inventory=inventory([world]), env=services.env)
    assert result.rc == 0, result.output
    table = result.result("Status | every key")["result"]["msg"]
    line = next(line for line in table if line.startswith("st-missing "))
    assert "fix: the secret does not exist" in line, table
