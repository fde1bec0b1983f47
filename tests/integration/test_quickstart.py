# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's install and quick start, run as written, so the README cannot rot.

The blocks marked ``<!-- quickstart:sh -->`` run in one bash, in a copy of this checkout, with
a HOME of their own (a new venv from PyPI, the collection built and installed from its
tarball); the blocks marked ``<!-- quickstart:file PATH -->`` are written to PATH first. The
only change: the loopback ports are free ones, so the test runs beside others. The result is
then read out of band: Vault with plain hvac, the provider keys from the emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from harness import REPO_ROOT, free_port

PORTS = ("8200", "8787", "8791")
OUT_OF_BAND = """
import json, os, urllib.request
import hvac
kv = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"]).secrets.kv.v2
seen = {}
for host in ("wishlist-anthropic", "search-openai", "chat-openrouter"):
    meta = kv.read_secret_metadata(path="quickstart/" + host, mount_point="secret")["data"]
    seen[host] = {"version": meta["current_version"], "record": meta["custom_metadata"]}
staged = kv.read_secret_version(path="quickstart/wishlist-anthropic-next", mount_point="secret", raise_on_deleted_version=True)
seen["staged_fields"] = sorted(staged["data"]["data"])
emulator = os.environ["ANTHROPIC_BASE_URL"].rsplit("/anthropic", 1)[0]
state = json.load(urllib.request.urlopen(emulator + "/_emulator/state"))
seen["status"] = {k["id"]: k["status"] for p in ("anthropic", "openai", "openrouter") for k in state[p]["keys"]}
print("OUT-OF-BAND " + json.dumps(seen))
"""
HOSTS = ("wishlist-anthropic", "search-openai", "chat-openrouter")


def readme_blocks(text: str):
    """(kind, path, body) of each marked block, in order."""
    pattern = re.compile(r"<!-- quickstart:(sh|file) ?([^ >]*) -->\s*\n```[a-z]*\n(.*?)\n```", re.S)
    return [(m.group(1), m.group(2), m.group(3)) for m in pattern.finditer(text)]


def test_the_readme_names_a_quick_start():
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        blocks = readme_blocks(handle.read())
    kinds = [(block[0], block[1]) for block in blocks]
    assert kinds == [("sh", ""), ("file", "keys.yml"), ("file", "deploy/reload.yml"), ("sh", "")], kinds
    commands = "\n".join(block[2] for block in blocks if block[0] == "sh")
    for needed in ("ansible-galaxy collection install", "-r requirements.txt", "apikeys.rotation.status",
                   "apikeys.rotation.rotate", "apikeys.rotation.probe", "rotate_force=true"):
        assert needed in commands, needed


def test_the_readme_quick_start_runs_as_written(tmp_path):
    if not shutil.which("python3"):
        pytest.skip("no python3 on PATH")
    src = tmp_path / "rotation"
    ignore = shutil.ignore_patterns(".venv", ".build", ".git", "tests/output", "__pycache__", ".pytest_cache")
    shutil.copytree(REPO_ROOT, src, ignore=ignore, symlinks=True)
    with open(src / "README.md", encoding="utf-8") as handle:
        blocks = readme_blocks(handle.read())
    ports = {p: str(free_port()) for p in PORTS}

    def localise(text: str) -> str:
        for old, new in ports.items():
            text = re.sub(r"\b%s\b" % old, new, text)
        return text

    for kind, path, body in blocks:
        if kind == "file":
            target = src / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(localise(body) + "\n", encoding="utf-8")
    commands = "\n".join(localise(block[2]) for block in blocks if block[0] == "sh").splitlines()
    # Read Vault and the emulator out of band (plain hvac, the control API) just before the
    # last line stops them.
    assert commands[-1].startswith("kill $(jobs -p)"), commands[-1]
    script = "\n".join(["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"] + commands[:-1]
                       + ["python - <<'PY'", OUT_OF_BAND, "PY", commands[-1]])
    (tmp_path / "quickstart.sh").write_text(script, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "VAULT_", "ANTHROPIC_", "OPENAI_", "OPENROUTER_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1", PATH=os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(os.path.join(REPO_ROOT, ".venv"))))
    # pip's download cache of the machine, if there is one: the venv is new, the wheels need not be
    env.setdefault("PIP_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "pip"))
    proc = subprocess.Popen(["bash", str(tmp_path / "quickstart.sh")], cwd=src, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = proc.communicate(timeout=1500)[0].decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output[-12000:]

    assert "rotate: 3 key(s), none failed" in output, output[-6000:]
    assert "probe: 3 key(s), none failed" in output, output[-6000:]
    assert "3 key(s): 3 ok" in output, output[-6000:]
    page = (src / "status.html").read_text(encoding="utf-8")
    assert all('data-key="%s"' % host in page for host in HOSTS)
    # the collection came from the tarball the README built, not from this checkout
    installed = src / "collections" / "ansible_collections" / "apikeys" / "rotation"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    # every process the quick start started is gone (its last line stops them)
    assert subprocess.run(["pgrep", "-f", str(src)], capture_output=True, check=False).stdout == b""
    seen = json.loads(next(line for line in output.splitlines() if line.startswith("OUT-OF-BAND "))[len("OUT-OF-BAND "):])
    for host in HOSTS:
        record = seen[host]["record"]
        assert seen[host]["version"] == 2 and not record.get("stage"), (host, seen[host])
        assert record["key_id"] and record["previous_key_id"] and record["key_id"] != record["previous_key_id"]
        assert seen["status"][record["key_id"]] == "active"
        assert seen["status"][record["previous_key_id"]] == {"wishlist-anthropic": "inactive", "search-openai": "active",
                                                             "chat-openrouter": "disabled"}[host]
    assert "api_key" not in seen["staged_fields"]
