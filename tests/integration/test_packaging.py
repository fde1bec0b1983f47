# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as a user gets it: ``ansible-galaxy collection build``, install, run.

Builds the tree into a tarball, checks what the tarball holds (and what it must not:
virtualenvs, build folders, test output, caches), installs it into an empty collections
path and runs the installed copy's probe playbook against a real OpenBao and the
provider emulator, with nothing of this tree on any path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import hvac
import pytest
import yaml

from harness import BIN_DIR, REPO_ROOT, AnsibleEnv

# Path components that never belong in a release (local tooling, caches, build output).
FORBIDDEN_PARTS = {".venv", ".venv-core221", ".build", ".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".tox", ".ci"}
FORBIDDEN_PREFIXES = ("tests/output",)


def galaxy_info() -> dict:
    with open(os.path.join(REPO_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def repo_modules() -> list:
    return sorted(n[:-3] for n in os.listdir(os.path.join(REPO_ROOT, "plugins", "modules")) if n.endswith(".py") and not n.startswith("_"))


def run(cmd: list, home: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    full_env.update({"HOME": home, "PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""), "ANSIBLE_NOCOLOR": "1"})
    full_env.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Build the tarball once and install it into an empty collections path."""
    root = tmp_path_factory.mktemp("packaging")
    home = str(root / "home")
    os.makedirs(home)
    dist = str(root / "dist")
    proc = run([os.path.join(BIN_DIR, "ansible-galaxy"), "collection", "build", REPO_ROOT, "--output-path", dist], home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = galaxy_info()
    tarball = os.path.join(dist, "%s-%s-%s.tar.gz" % (info["namespace"], info["name"], info["version"]))
    assert os.listdir(dist) == [os.path.basename(tarball)]
    installed = str(root / "installed")
    proc = run([os.path.join(BIN_DIR, "ansible-galaxy"), "collection", "install", tarball, "-p", installed], home,
               ANSIBLE_COLLECTIONS_PATH=installed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"tarball": tarball, "installed": installed, "home": home, "root": str(root)}


def test_tarball_holds_the_collection_and_nothing_local(built):
    with tarfile.open(built["tarball"]) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    leaked = [n for n in names if FORBIDDEN_PARTS & set(n.split("/")) or n.startswith(FORBIDDEN_PREFIXES)
              or (n.endswith(".tar.gz"))]
    assert not leaked, "the release tarball holds local files: %s" % leaked[:20]
    assert os.path.getsize(built["tarball"]) < 2 * 1024 * 1024
    info = galaxy_info()
    collection = manifest["collection_info"]
    assert (collection["namespace"], collection["name"], collection["version"]) == (info["namespace"], info["name"], info["version"])
    assert collection["dependencies"] == info.get("dependencies", {})
    expected = {"meta/runtime.yml", "README.md", "requirements.txt", "bindep.txt", "execution-environment.yml",
                "roles/rotate/meta/argument_specs.yml", "docs/modules/README.md"}
    expected |= {"plugins/modules/%s.py" % m for m in repo_modules()}
    expected |= {"playbooks/%s" % n for n in os.listdir(os.path.join(REPO_ROOT, "playbooks")) if n.endswith(".yml")}
    expected |= {"extensions/awx/credential_types/%s" % n
                 for n in os.listdir(os.path.join(REPO_ROOT, "extensions", "awx", "credential_types"))}
    missing = sorted(expected - set(names))
    assert not missing, "missing from the tarball: %s" % missing


def test_installed_copy_lists_every_module(built):
    collection_dir = os.path.join(built["installed"], "ansible_collections", "apikeys", "rotation")
    assert os.path.isfile(os.path.join(collection_dir, "MANIFEST.json"))
    assert not os.path.islink(collection_dir)
    proc = run([os.path.join(BIN_DIR, "ansible-doc"), "-t", "module", "-l", "-j", "apikeys.rotation"], built["home"],
               ANSIBLE_COLLECTIONS_PATH=built["installed"], ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert sorted(listed) == ["apikeys.rotation." + m for m in repo_modules()]
    proc = run([os.path.join(BIN_DIR, "ansible-galaxy"), "collection", "list", "apikeys.rotation", "--format", "json",
                "-p", built["installed"]], built["home"], ANSIBLE_COLLECTIONS_PATH=built["installed"])
    assert proc.returncode == 0, proc.stderr
    versions = [c["version"] for path in json.loads(proc.stdout).values() for c in path.values()]
    assert versions == [galaxy_info()["version"]]


def test_installed_probe_playbook_runs(built, openbao, emulator, kv_path, tmp_path):
    """The installed copy's apikeys.rotation.probe against OpenBao and the emulator, one seeded key."""
    playbook = os.path.join(built["installed"], "ansible_collections", "apikeys", "rotation", "playbooks", "probe.yml")
    if not os.path.exists(os.path.join(REPO_ROOT, "playbooks", "probe.yml")):
        pytest.skip("playbooks/probe.yml does not exist yet")
    with open(playbook, encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    # Which hosts the playbook targets: its 'hosts' pattern, with rotate_hosts defaulting to all.
    assert [play["hosts"] for play in plays] == ["{{ rotate_hosts | default('all') }}"] * len(plays)

    key = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "packaged"})
    hvac.Client(url=openbao.addr, token=openbao.root_token).secrets.kv.v2.create_or_update_secret(
        path=kv_path, secret={"api_key": key["value"]}, mount_point="secret")
    inventory = {"api_keys": {"hosts": {"packaged-key": {
        "provider": "openrouter", "vault_path": kv_path, "rotate_check_retries": 1, "rotate_check_delay": 0.2,
        "ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN_DIR, "python")}}}}
    before = emulator.control("GET", "hits")["counts"].get("openrouter GET /key", 0)
    env = AnsibleEnv(str(tmp_path), built["installed"])
    result = env.run_playbook("apikeys.rotation.probe", inventory=inventory, env={
        "VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token, "PYTHONPATH": "",
        "OPENROUTER_BASE_URL": emulator.base_url("openrouter")})
    assert result.rc == 0, result
    events = {e["task"].split(" : ")[-1]: e for e in result.events if e.get("host") == "packaged-key"}
    assert events["Probe | probe the key at the provider"]["event"] == "ok", result
    summary = events["Probe | summary"]["result"]["msg"]
    assert summary["fingerprint"] == "sha256:" + hashlib.sha256(key["value"].encode("utf-8")).hexdigest()[:12]
    assert emulator.control("GET", "hits")["counts"].get("openrouter GET /key", 0) > before
    assert key["value"] not in result.output


def _tree_digest(paths: list) -> str:
    digest = hashlib.sha256()
    for top in paths:
        full = os.path.join(REPO_ROOT, top)
        files = [full] if os.path.isfile(full) else sorted(os.path.join(d, f) for d, _s, fs in os.walk(full) for f in fs)
        for path in files:
            digest.update(os.path.relpath(path, REPO_ROOT).encode("utf-8"))
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def test_release_changelog_can_be_generated(tmp_path):
    """``antsibull-changelog release`` for the next version, run on a copy: it succeeds, turns every
    fragment into the release's changes and CHANGELOG.rst, lists the new modules, and the
    repository's changelogs/ and CHANGELOG.rst stay as they are."""
    watched = ["changelogs", "CHANGELOG.rst"]
    before = _tree_digest(watched)
    copy = tmp_path / "collection"
    copy.mkdir()
    for name in ("galaxy.yml", "CHANGELOG.rst", "meta", "plugins", "roles", "playbooks", "changelogs"):
        source = os.path.join(REPO_ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, str(copy / name), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, str(copy / name))

    with open(os.path.join(REPO_ROOT, "changelogs", "changelog.yaml"), encoding="utf-8") as handle:
        released = set((yaml.safe_load(handle) or {}).get("releases") or {})
    version = galaxy_info()["version"]
    if version in released:  # galaxy.yml not bumped yet after a release: the next patch release
        major, minor, patch = version.split(".")[:3]
        version = "%s.%s.%d" % (major, minor, int(patch) + 1)
    fragments_dir = os.path.join(REPO_ROOT, "changelogs", "fragments")
    fragments = sorted(n for n in os.listdir(fragments_dir) if n.endswith((".yml", ".yaml")))
    assert fragments, "no changelog fragment to release"
    with open(os.path.join(REPO_ROOT, "changelogs", "config.yaml"), encoding="utf-8") as handle:
        trivial = yaml.safe_load(handle).get("trivial_section_name", "trivial")
    expected: dict = {}
    for name in fragments:
        with open(os.path.join(fragments_dir, name), encoding="utf-8") as handle:
            for section, entries in (yaml.safe_load(handle) or {}).items():
                entries = [entries] if isinstance(entries, str) else entries
                if section != trivial:  # fragments' trivial entries stay out of the changelog
                    expected.setdefault(section, []).extend(entries)

    home = str(tmp_path / "home")
    os.makedirs(home)
    proc = subprocess.run([os.path.join(BIN_DIR, "antsibull-changelog"), "release", "--version", version],
                          cwd=str(copy), capture_output=True, text=True, timeout=300, check=False,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
                               "HOME": home, "PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    with open(str(copy / "changelogs" / "changelog.yaml"), encoding="utf-8") as handle:
        release = yaml.safe_load(handle)["releases"][version]
    assert sorted(release["fragments"]) == fragments
    assert {s: sorted(e) for s, e in release["changes"].items()} == {s: sorted(e) for s, e in expected.items()}
    assert sorted(m["name"] for m in release["modules"]) == repo_modules()
    with open(str(copy / "CHANGELOG.rst"), encoding="utf-8") as handle:
        rst = handle.read()
    assert "\nv%s\n" % version in rst
    for entries in expected.values():
        for entry in entries:
            assert "- %s" % entry.strip() in rst, entry
    for module in repo_modules():
        assert "- apikeys.rotation.%s - " % module in rst
    assert _tree_digest(watched) == before, "antsibull-changelog changed the repository"
