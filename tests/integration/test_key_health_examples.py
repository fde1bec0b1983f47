# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key health endpoints to copy (docs/examples/key-health/) against the provider emulator.

The Python one runs as the small service it is (a key delivered to a file, re-read on SIGHUP);
the Cloudflare Worker and the Express route run under ``node --test`` when Node is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from harness import REPO_ROOT, free_port, http_json, stop_process, wait_for
from test_rotation import fp

EXAMPLES = os.path.join(REPO_ROOT, "docs", "examples", "key-health")


def make_key(emulator, provider, **extra):
    return emulator.control("POST", "keys", dict(extra, provider=provider, kind="api"))


def revoke(emulator, key):
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "admin"})["value"]
    status = http_json("DELETE", emulator.base_url("openrouter") + "/keys/" + key["id"],
                       headers={"Authorization": "Bearer " + admin})[0]
    assert status == 200


def test_python_endpoint_reloads_its_key_file_on_sighup(emulator, tmp_path):
    old, new = make_key(emulator, "openrouter"), make_key(emulator, "openrouter")
    key_file = tmp_path / "openrouter.key"
    key_file.write_text(old["value"] + "\n")
    port = free_port()
    log = open(str(tmp_path / "key-health.log"), "wb")  # pylint: disable=consider-using-with
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "key_health.py"), "--provider", "openrouter",
                             "--key-file", str(key_file), "--base-url", emulator.base_url("openrouter"),
                             "--port", str(port), "--cache-seconds", "0"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d/healthz/key" % port
    try:
        wait_for(lambda: http_json("GET", url, timeout=1)[0] == 200, 30, "the Python key health endpoint")
        assert http_json("GET", url)[1] == {"live": True, "fingerprint": fp(old["value"])}
        key_file.write_text(new["value"] + "\n")
        # not re-read until the reload signal
        assert http_json("GET", url)[1]["fingerprint"] == fp(old["value"])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: http_json("GET", url)[1]["fingerprint"] == fp(new["value"]), 30, "the key re-read on SIGHUP")
        assert http_json("GET", url)[1] == {"live": True, "fingerprint": fp(new["value"])}
        revoke(emulator, new)
        assert http_json("GET", url)[1] == {"live": False, "fingerprint": fp(new["value"])}
        assert http_json("GET", "http://127.0.0.1:%d/other" % port)[0] == 404
    finally:
        stop_process(proc)
        log.close()
    output = (tmp_path / "key-health.log").read_text("utf-8", "replace")
    assert old["value"] not in output and new["value"] not in output
    hits = emulator.control("GET", "hits")["counts"]
    assert not any("chat/completions" in name for name in hits), "only the zero-token endpoint is called"


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="Node is not installed: the JavaScript examples are run with node --test")
@pytest.mark.parametrize("provider", ["anthropic", "openai", "openrouter"])
def test_javascript_endpoints_with_node(provider, emulator):
    extra = {}
    if provider == "openai":
        extra["project_id"] = emulator.control("POST", "openai/projects", {"name": "examples"})["id"]
    live, dead = make_key(emulator, provider, **extra), make_key(emulator, provider, status="inactive", **extra) \
        if provider == "anthropic" else make_key(emulator, provider, **extra)
    if provider == "openrouter":
        revoke(emulator, dead)
    elif provider == "openai":
        admin = emulator.control("POST", "keys", {"provider": "openai", "kind": "admin"})["value"]
        status = http_json("DELETE", "%s/organization/projects/%s/service_accounts/%s" % (
            emulator.base_url("openai"), extra["project_id"], dead["service_account_id"]),
            headers={"Authorization": "Bearer " + admin})[0]
        assert status == 200
    env = dict(os.environ, KEY_HEALTH_BASE_URL=emulator.base_url(provider), KEY_HEALTH_PROVIDER=provider,
               KEY_HEALTH_LIVE_KEY=live["value"], KEY_HEALTH_DEAD_KEY=dead["value"])
    run = subprocess.run([NODE, "--test", os.path.join(EXAMPLES, "key_health.test.mjs")], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 3" in run.stdout and "# skipped 0" in run.stdout, run.stdout
