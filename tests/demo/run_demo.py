# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``make demo``: a zero-downtime rotation of three provider keys, on this machine.

1. starts an OpenBao dev server and the provider emulator (loopback only);
2. seeds an admin key per provider and one key per provider in use, written to Vault
   (Anthropic has no key-creation API: a second, "Console-made" key is staged in Vault);
3. starts one sample application per key (tests/demo/sample_app.py), each reading its
   key from Vault and calling its provider on every request;
4. drives steady, bounded load at the applications while ``ansible-playbook
   apikeys.rotation.rotate`` rotates the three keys (deploy hook: POST /reload;
   health_url: the application's /healthz/key);
5. runs ``apikeys.rotation.probe``, prints what happened and the failed-request count,
   which must be 0, and stops every process it started, also on failure or Ctrl-C.

Everything it writes lives under .build/demo/. Exit status 0 only when every check passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import typing as t
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness import Emulator, OpenBaoDev, free_port, http_json, stop_process, wait_for  # noqa: E402  pylint: disable=wrong-import-position

BUILD = os.path.join(REPO, ".build", "demo")
BIN = os.path.dirname(sys.executable)
SAMPLE_APP = os.path.join(REPO, "tests", "demo", "sample_app.py")
RELOAD_HOOK = os.path.join(REPO, "tests", "demo", "reload_hook.yml")
PROVIDERS = ("anthropic", "openai", "openrouter")
HOSTS = {"anthropic": "wishlist-anthropic", "openai": "search-openai", "openrouter": "chat-openrouter"}
ADMIN_ENV = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY", "openrouter": "OPENROUTER_MANAGEMENT_KEY"}
BASE_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL", "openrouter": "OPENROUTER_BASE_URL"}
LOAD_RATE = 50.0          # requests per second, all applications together
LOAD_MAX_SECONDS = 300.0  # the load stops after this long whatever happens
LOAD_MAX_REQUESTS = int(LOAD_RATE * LOAD_MAX_SECONDS)
NEW_KEY_DELAY = 1.5       # the emulator accepts a new key only this long after it was made


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Processes:
    """Every process the demo starts, stopped by pid (its process group) in reverse order."""

    def __init__(self) -> None:
        self.stoppers: t.List[t.Tuple[str, t.Callable[[], None]]] = []

    def add(self, name: str, stopper: t.Callable[[], None]) -> None:
        self.stoppers.append((name, stopper))

    def stop_all(self) -> None:
        while self.stoppers:
            name, stopper = self.stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # pylint: disable=broad-except
                say("  could not stop %s: %s" % (name, exc))


class Load:
    """Steady, bounded GET /work load spread over the applications (loopback only)."""

    def __init__(self, urls: t.Dict[str, str], rate: float, max_seconds: float, max_requests: int, workers: int = 6) -> None:
        self.urls = urls
        self.interval = 1.0 / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.sent = 0
        self.counts = {name: {"ok": 0, "failed": 0} for name in urls}
        self.failures: t.List[str] = []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._worker, daemon=True) for dummy in range(workers)]
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()

    def _next(self) -> t.Optional[t.Tuple[str, float]]:
        with self.lock:
            if self.stop_event.is_set() or self.sent >= self.max_requests:
                return None
            due = self.started + self.sent * self.interval
            if due - self.started > self.max_seconds:
                return None
            name = list(self.urls)[self.sent % len(self.urls)]
            self.sent += 1
            return name, due

    def _worker(self) -> None:
        while True:
            nxt = self._next()
            if nxt is None:
                return
            name, due = nxt
            delay = due - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.urls[name] + "/work", timeout=15) as resp:
                    resp.read()
                    ok = resp.status == 200
                    detail = str(resp.status)
            except urllib.error.HTTPError as exc:
                ok, detail = False, "%s %s" % (exc.code, exc.read()[:200].decode("utf-8", "replace"))
            except (urllib.error.URLError, OSError) as exc:
                ok, detail = False, type(exc).__name__
            with self.lock:
                self._record(name, started, time.monotonic() - started, ok, detail)

    def _record(self, name: str, started: float, seconds: float, ok: bool, detail: str) -> None:
        """Count one request's outcome (called with the lock held)."""
        del started, seconds  # kept by subclasses that record latency
        self.counts[name]["ok" if ok else "failed"] += 1
        if not ok and len(self.failures) < 20:
            self.failures.append("%s: %s" % (name, detail))

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=20)

    def total(self, what: str) -> int:
        with self.lock:
            return sum(c[what] for c in self.counts.values())


def run_playbook(args: t.List[str], env: t.Dict[str, str], procs: Processes) -> int:
    """Run ansible-playbook in its own session, streaming its output; stopped by pid on Ctrl-C."""
    proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook")] + args, cwd=BUILD, env=env,
                            start_new_session=True)
    procs.add("ansible-playbook", lambda: stop_process(proc))
    return proc.wait()


def main() -> int:
    if os.path.isdir(BUILD):
        shutil.rmtree(BUILD)
    home = os.path.join(BUILD, "home")
    os.makedirs(home)
    procs = Processes()
    failures: t.List[str] = []

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        raise KeyboardInterrupt()

    # Ctrl-C and SIGTERM stop the demo and every process it started (also when started
    # from a shell that ignores SIGINT in background jobs).
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        say("== starting OpenBao (dev) and the provider emulator")
        bao = OpenBaoDev(os.path.join(BUILD, "openbao")).start()
        procs.add("openbao", bao.stop)
        emulator = Emulator(os.path.join(BUILD, "emulator")).start()
        procs.add("emulator", emulator.stop)
        say("   OpenBao %s, emulator %s" % (bao.addr, emulator.url))

        vault_headers = {"X-Vault-Token": bao.root_token}

        def vault_write(path: str, value: str) -> None:
            status, body = http_json("POST", "%s/v1/secret/data/%s" % (bao.addr, path), {"data": {"api_key": value}},
                                     headers=vault_headers)
            if status != 200:
                raise RuntimeError("writing %s to OpenBao failed: %s %s" % (path, status, body))

        def vault_read(path: str) -> t.Tuple[str, dict]:
            status, body = http_json("GET", "%s/v1/secret/data/%s" % (bao.addr, path), headers=vault_headers)
            if status != 200:
                raise RuntimeError("reading %s from OpenBao failed: %s" % (path, status))
            meta = http_json("GET", "%s/v1/secret/metadata/%s" % (bao.addr, path), headers=vault_headers)[1]["data"]
            return body["data"]["data"]["api_key"], meta

        say("== seeding provider keys (admin keys, one key in use per provider) and writing them to Vault")
        env_vars = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": bao.root_token}
        old: t.Dict[str, dict] = {}
        hosts: t.Dict[str, dict] = {}
        project = emulator.control("POST", "openai/projects", {"name": "search"})["id"]
        for provider in PROVIDERS:
            env_vars[ADMIN_ENV[provider]] = emulator.control("POST", "keys", {"provider": provider, "kind": "admin"})["value"]
            env_vars[BASE_ENV[provider]] = emulator.base_url(provider)
            body = {"provider": provider, "kind": "api", "name": "%s-initial" % HOSTS[provider]}
            if provider == "openai":
                body["project_id"] = project
            old[provider] = emulator.control("POST", "keys", body)
            path = "demo/%s" % HOSTS[provider]
            vault_write(path, old[provider]["value"])
            hosts[HOSTS[provider]] = {"provider": provider, "vault_path": path}
            if provider == "openai":
                hosts[HOSTS[provider]].update(openai_project_id=project)
            if provider == "anthropic":
                console = emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "made-in-console"})
                vault_write(path + "-next", console["value"])
                hosts[HOSTS[provider]]["new_api_key_vault_path"] = path + "-next"
            say("   %-20s %-10s key %s (%s) at secret/%s"
                % (HOSTS[provider], provider, old[provider]["id"][:24], fingerprint(old[provider]["value"]), path))
        emulator.control("POST", "propagation", {"provider": None, "new_key_delay": NEW_KEY_DELAY, "revoke_delay": 0})
        say("   the emulator accepts a new key only %.1fs after it is made (propagation delay)" % NEW_KEY_DELAY)

        say("== starting one sample application per key")
        apps: t.Dict[str, str] = {}
        for provider in PROVIDERS:
            host = HOSTS[provider]
            port = free_port()
            log = open(os.path.join(BUILD, "app-%s.log" % host), "ab")  # pylint: disable=consider-using-with
            proc = subprocess.Popen(
                [sys.executable, SAMPLE_APP, "--port", str(port), "--provider", provider,
                 "--base-url", emulator.base_url(provider), "--vault-addr", bao.addr, "--path", hosts[host]["vault_path"]],
                env=dict(os.environ, VAULT_TOKEN=bao.root_token), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()
            procs.add("sample app " + host, lambda proc=proc: stop_process(proc))
            url = "http://127.0.0.1:%d" % port
            wait_for(lambda url=url: http_json("GET", url + "/stats", timeout=1)[0] == 200, 20, "sample app on " + url)
            apps[host] = url
            hosts[host].update(health_url=url + "/healthz/key", app_url=url, deploy_tasks=RELOAD_HOOK)
            say("   %-20s %s" % (host, url))

        inventory = {"api_keys": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "rotate_probe_delay": 0.5, "rotate_verify_successes": 3},
            "hosts": hosts}}
        inventory_path = os.path.join(BUILD, "inventory.yml")
        with open(inventory_path, "w", encoding="utf-8") as handle:
            json.dump(inventory, handle, indent=2)

        collection_dirs = [os.path.abspath(entry) for entry in (os.environ.get("ANSIBLE_COLLECTIONS_PATH")
                                                                or os.path.join(REPO, ".build", "collections")).split(os.pathsep) if entry]
        collections = os.pathsep.join(collection_dirs)
        link = os.path.join(collection_dirs[0], "ansible_collections", "apikeys", "rotation")
        if not os.path.exists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(REPO, link)
        ansible_env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("ANSIBLE_", "VAULT_", "ANTHROPIC_", "OPENAI_", "OPENROUTER_"))}
        ansible_env.update(env_vars)
        ansible_env.update({
            "HOME": home,
            "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
            "ANSIBLE_COLLECTIONS_PATH": collections,
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_LOCAL_TEMP": os.path.join(BUILD, "tmp", "ansible-local"),
            "ANSIBLE_REMOTE_TMP": os.path.join(BUILD, "tmp", "ansible-remote"),
            "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
        })

        say("== load: %d req/s over the three applications (at most %d requests, %ds)"
            % (LOAD_RATE, LOAD_MAX_REQUESTS, LOAD_MAX_SECONDS))
        load = Load(apps, LOAD_RATE, LOAD_MAX_SECONDS, LOAD_MAX_REQUESTS)
        load.start()
        time.sleep(2)

        say("== ansible-playbook -i %s apikeys.rotation.rotate -e rotate_force=true" % os.path.relpath(inventory_path, REPO))
        rotate_started = time.monotonic()
        rc = run_playbook(["-i", inventory_path, "apikeys.rotation.rotate", "-e", "rotate_force=true"], ansible_env, procs)
        rotate_seconds = time.monotonic() - rotate_started
        if rc != 0:
            failures.append("the rotate playbook failed (rc %d)" % rc)
        time.sleep(2)  # a little more load on the new keys

        say("== ansible-playbook -i %s apikeys.rotation.probe" % os.path.relpath(inventory_path, REPO))
        rc = run_playbook(["-i", inventory_path, "apikeys.rotation.probe"], ansible_env, procs)
        if rc != 0:
            failures.append("the probe playbook failed (rc %d)" % rc)
        load.stop()

        say("== result")
        state = emulator.control("GET", "state")
        say("   %-20s %-19s %-19s %-22s %s" % ("key", "old", "new (Vault)", "old key now", "application"))
        for provider in PROVIDERS:
            host = HOSTS[provider]
            value, meta = vault_read(hosts[host]["vault_path"])
            keys = {k["id"]: k for k in state[provider]["keys"]}
            old_status = keys.get(old[provider]["id"], {}).get("status", "?")
            stats = http_json("GET", apps[host] + "/stats")[1]
            say("   %-20s %-19s %-19s %-22s serves %s, %d requests, %d failed"
                % (host, fingerprint(old[provider]["value"]), fingerprint(value),
                   "%s (%s)" % (old_status, (meta.get("custom_metadata") or {}).get("previous_state", "?")),
                   stats["fingerprint"], stats["requests"], stats["failures"]))
            if value == old[provider]["value"]:
                failures.append("%s: Vault still holds the old key" % host)
            if stats["fingerprint"] != fingerprint(value):
                failures.append("%s: the application does not serve the key in Vault" % host)
            expected_old = "active" if provider == "openai" else {"anthropic": "inactive", "openrouter": "disabled"}[provider]
            if old_status != expected_old:
                failures.append("%s: the old key is %s, expected %s" % (host, old_status, expected_old))
            active = [k for k in state[provider]["keys"] if k.get("kind") == "api" and k["status"] == "active"]
            if fingerprint(value) not in [k["fingerprint"] for k in active]:
                failures.append("%s: the key in Vault is not active at the provider" % host)
        failed = load.total("failed")
        say("   requests sent during the rotation: %d, failed: %d" % (load.total("ok") + failed, failed))
        say("   rotation of three keys took %.1fs (demo total %.1fs)" % (rotate_seconds, time.monotonic() - started))
        say("   OpenAI cannot disable a key: its old key stays active until 'apikeys.rotation.cleanup' deletes it after grace_period.")
        if failed:
            failures.append("%d requests failed during the rotation: %s" % (failed, "; ".join(load.failures[:5])))
        if load.total("ok") == 0:
            failures.append("no request succeeded: the load never ran")
    except KeyboardInterrupt:
        failures.append("interrupted")
    except Exception as exc:  # pylint: disable=broad-except
        failures.append("%s: %s" % (type(exc).__name__, exc))
    finally:
        say("== stopping every process the demo started")
        procs.stop_all()

    if failures:
        say("DEMO FAILED:")
        for failure in failures:
            say("  - " + failure)
        say("logs: %s" % os.path.relpath(BUILD, REPO))
        return 1
    say("DEMO OK: three keys rotated under load with 0 failed requests.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
