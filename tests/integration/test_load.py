# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zero downtime under load: the sample application serves steady traffic while its key rotates.

The sample application (tests/demo/sample_app.py) reads its key from OpenBao and calls the
provider emulator on every request. Bounded loopback load (about 100 requests/s, at most
MAX_SECONDS) runs for the whole length of ``apikeys.rotation.rotate`` with the application's
health endpoint and its reload hook (tests/demo/reload_hook.yml). Not one request may fail,
and the application never even meets a rejected key (it would re-read Vault and retry on a
401; that fallback must not be needed). Then again with propagation switched on:
a new key refused by its first probes, and revoked keys that keep working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as t

import pytest

from harness import REPO_ROOT, free_port, http_json, stop_process, wait_for
from test_rotation import HOST, ROTATE, Setup, fp

sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "demo"))
import run_demo  # noqa: E402  pylint: disable=wrong-import-position

RATE = 100.0          # requests per second
MAX_SECONDS = 150.0   # the load stops after this long whatever happens
TRAFFIC_AROUND = 50   # completed requests of the load before the rotation starts and after it ends
PROBE_DELAY = 0.3
CASES = {
    # name -> (provider, propagation settings or None)
    "openrouter": ("openrouter", None),
    # Counted in refused authentications, so the first probes of the new key fail however
    # slow the machine (the Console-made Anthropic key is staged again just before the run).
    "openrouter-delayed": ("openrouter", {"new_key_refusals": 5, "revoke_delay": 5.0}),
    "anthropic-delayed": ("anthropic", {"new_key_refusals": 5, "revoke_delay": 5.0}),
}


class TimedLoad(run_demo.Load):
    """The demo's steady, bounded load, also recording each request's latency and time."""

    def __init__(self, url: str) -> None:
        super().__init__({"app": url}, RATE, MAX_SECONDS, int(RATE * MAX_SECONDS), workers=8)
        self.samples: t.List[t.Tuple[float, float, bool]] = []  # (sent at, seconds, ok)

    def _record(self, name: str, started: float, seconds: float, ok: bool, detail: str) -> None:
        self.samples.append((started, seconds, ok))
        super()._record(name, started, seconds, ok, detail)

    def wait_for_traffic(self, since: float, count: int = TRAFFIC_AROUND) -> None:
        """Wait until ``count`` requests sent at or after ``since`` (time.monotonic()) have completed."""
        def enough() -> bool:
            with self.lock:
                return sum(1 for sample in self.samples if sample[0] >= since) >= count
        wait_for(enough, 60, "%d completed requests of the load" % count)

    def figures(self, since: float, until: float) -> dict:
        with self.lock:
            samples = list(self.samples)
        latencies = sorted(s[1] for s in samples)

        def pct(p: float) -> float:
            return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0
        return {"sent": len(samples), "failed": sum(1 for s in samples if not s[2]),
                "during_rotation": sum(1 for s in samples if since <= s[0] <= until),
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(1000 * latencies[-1], 1) if latencies else 0.0}


@pytest.fixture()
def sample_app(tmp_path):
    """Start the sample application for a Setup; stopped by pid when the test ends."""
    started: t.List[subprocess.Popen] = []

    def start(s: Setup) -> str:
        port = free_port()
        log = open(str(tmp_path / "sample-app.log"), "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen([sys.executable, run_demo.SAMPLE_APP, "--port", str(port), "--provider", s.provider,
                                 "--base-url", s.emulator.base_url(s.provider), "--vault-addr", s.env["VAULT_ADDR"],
                                 "--path", s.kv_path],
                                env=dict(os.environ, VAULT_TOKEN=s.env["VAULT_TOKEN"]), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        started.append(proc)
        url = "http://127.0.0.1:%d" % port
        wait_for(lambda: http_json("GET", url + "/stats", timeout=1)[0] == 200, 30, "the sample application on " + url)
        return url

    yield start
    for proc in started:
        stop_process(proc)


@pytest.mark.parametrize("case", sorted(CASES))
def test_zero_failed_requests_during_rotation(case, openbao, emulator, kv_path, ansible, sample_app):
    provider, propagation = CASES[case]
    s = Setup(provider, openbao, emulator, kv_path)
    url = sample_app(s)
    if propagation:
        # Switched on once the key in use works; Anthropic's Console-made key is staged again
        # under it, so that both providers' new keys meet the delay.
        emulator.control("POST", "propagation", dict(propagation, provider=provider))
        if provider == "anthropic":
            s.restage_console_key()
    assert http_json("GET", url + "/stats")[1]["fingerprint"] == fp(s.old["value"])
    inventory = s.inventory(health_url=url + "/healthz/key", app_url=url, deploy_tasks=run_demo.RELOAD_HOOK,
                            rotate_probe_delay=PROBE_DELAY, rotate_probe_retries=300, rotate_verify_successes=3)
    load = TimedLoad(url)
    load.start()
    try:
        load.wait_for_traffic(0.0)
        began = time.monotonic()
        result = ansible.run_playbook(ROTATE, inventory=inventory, extra_vars={"rotate_force": True},
                                      env=dict(s.env, ANSIBLE_PIPELINING="1"))
        ended = time.monotonic()
        load.wait_for_traffic(ended)
    finally:
        load.stop()
    figures = load.figures(began, ended)
    stats = http_json("GET", url + "/stats")[1]
    figures.update(rotation_seconds=round(ended - began, 1), rereads_on_401=stats["rereads_on_401"], reloads=stats["reloads"])
    sys.stdout.write("\nload during rotation [%s]: %s\n" % (case, figures))
    assert result.rc == 0, result

    new_value = s.value()
    assert new_value != s.old["value"]
    assert stats["fingerprint"] == fp(new_value), "the application serves the key Vault holds"
    assert [k["fingerprint"] for k in s.active()] == [fp(new_value)] or provider == "openai"
    assert s.key(s.old["id"])["status"] != "active" or provider == "openai"
    summary = result.result("apikeys.rotation.rotate : Report | summary", HOST)["result"]["msg"]
    assert summary["probes"]["health_attempts"] >= 1, "verify asked the application which key it serves"
    if propagation:
        assert summary["probes"]["pre_verify_attempts"] > 1, "the new key met the propagation delay"
    # The load really ran across the rotation, and not one request failed.
    assert figures["during_rotation"] >= RATE * (ended - began) * 0.3, figures
    assert figures["failed"] == 0, "failed requests: %s" % load.failures
    assert stats["failures"] == 0 and stats["rereads_on_401"] == 0, stats
    assert stats["reloads"] >= 2, "the deploy hook made the application reload"
