# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``make bench``: what the collection costs, measured on this machine.

Everything runs on loopback against a local OpenBao dev server and the provider emulator
(the integration test harness starts and stops both), with real ansible-playbook:

imports   python -X importtime of each module's imports beside ansible.builtin.ping's
          (best of BENCH_IMPORT_REPEATS), and which heavy libraries each one loads.
process   the module process alone: each module's AnsiballZ payload (kept from one real
          run) executed BENCH_PROCESS_N times, interleaved with ping's: wall and CPU.
modules   per-task wall time inside ansible-playbook: BENCH_N rounds of every module and
          ansible.builtin.ping interleaved in one play; median per module / median of ping.
rotation  one full rotation of one OpenRouter key (probe delay 0): the rotate role against
          the naive baseline (benchmarks/baseline/), alternating, BENCH_ROTATIONS each; beside
          them, ansible-core's floor: a play of as many no-op tasks as the role has, and of one;
          then one more run of the role and of that play, each task's worker timed in parts
          (benchmarks/worker_times.py: conditions, templating, the action's run, the rest).
fleet     BENCH_FLEET_SIZES keys at BENCH_FLEET_FORKS forks: wall time, CPU seconds per key
          and peak memory of the whole ansible-playbook process tree, role and baseline.
compare   (only when named) the rotate role of the working tree beside the role of the git
          ref BENCH_COMPARE_REF (default HEAD), one rotation each, alternating,
          BENCH_ROTATIONS each; then one more run of each with its workers timed in parts,
          and the tasks whose workers changed most. Load moves both sides alike, so this
          measures a change more closely than two runs of the rotation section can.

Knobs (environment): BENCH_SECTIONS (default imports,process,modules,rotation,fleet),
BENCH_N (20), BENCH_PROCESS_N (10), BENCH_IMPORT_REPEATS (7), BENCH_ROTATIONS (5),
BENCH_FLEET_SIZES (10), BENCH_FLEET_FORKS (10), BENCH_FLEET_REPEATS (1), BENCH_PIPELINING
(unset: every playbook as written, that is the collection's playbooks with pipelining, which
their plays turn on, the baseline and the benchmark's own plays without; 1: every playbook
with ANSIBLE_PIPELINING=true; 0: none, the collection's playbooks included),
BENCH_BYTECODE (unset or 1: Python's bytecode cache on, kept in .build/pycache, filled by one
untimed rotation of each side before anything is timed, as an installed collection's is after
its first run; 0: off, every playbook compiles the collection's Python files again, as in an
execution environment whose collection directory the job cannot write),
BENCH_BASELINE_COLLECTIONS (the
ansible_collections parent of the `ansible` package, default: the site-packages of
.build/bench-venv), BENCH_OUT (results JSON, default .build/bench/results-<time>.json). The full fleet matrix:
BENCH_FLEET_SIZES=10,50,100 BENCH_FLEET_FORKS=10,20 make bench BENCH_SECTIONS=fleet

Numbers are printed as Markdown tables; every run's raw data goes to BENCH_OUT.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness import BIN_DIR, CALLBACK_DIR, AnsibleEnv, Emulator, OpenBaoDev, bao_binary  # noqa: E402  pylint: disable=wrong-import-position

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
TIMER_DIR = os.path.join(BENCH_DIR, "callback_plugins")
BASELINE_TASKS = os.path.join(BENCH_DIR, "baseline", "rotate_naive_tasks.yml")
WORKER_TIMES = os.path.join(BENCH_DIR, "worker_times.py")
BUILD = os.path.join(REPO, ".build", "bench")
PROVIDER = "openrouter"
# BENCH_PIPELINING: unset runs every playbook as written (the collection's playbooks set
# ansible_pipelining in their plays; the baseline and the benchmark's own plays do not);
# 1 runs every playbook with ANSIBLE_PIPELINING=true (both sides of each comparison);
# 0 turns it off everywhere, the collection's playbooks included (-e ansible_pipelining=false).
PIPELINING_KNOB = os.environ.get("BENCH_PIPELINING", "").strip().lower()
PIPELINING = PIPELINING_KNOB in ("1", "true", "yes")
NO_PIPELINING = PIPELINING_KNOB in ("0", "false", "no")
BYTECODE = os.environ.get("BENCH_BYTECODE", "").strip().lower() not in ("0", "false", "no")
COLL = "ansible_collections.apikeys.rotation.plugins.modules."
MODULES = ("vault_secret_info", "vault_secret_write", "vault_lease", "provider_key_info", "api_key_probe",
           "provider_key_create", "provider_key_revoke")
VAULT_MODULES = ("vault_secret_info", "vault_secret_write", "vault_lease")
# Libraries worth naming in the import table (a Vault module must not load httpx, a provider module not hvac).
HEAVY = ("hvac", "requests", "urllib3", "httpx", "httpcore", "h11", "anyio", "rich", "click", "pygments",
         "ansible.module_utils.urls", "ssl", "certifi", "idna", "charset_normalizer")
# The ones the import table names.
NAMED = ("hvac", "requests", "httpx", "rich", "click", "pygments", "anyio", "ansible.module_utils.urls")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def knob(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def int_list(name: str, default: str) -> t.List[int]:
    return [int(x) for x in knob(name, default).replace(" ", "").split(",") if x]


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def median(values: t.Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def table(header: t.Sequence[str], rows: t.Iterable[t.Sequence[t.Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Measuring a process tree: CPU from rusage of reaped children, memory by sampling /proc
# --------------------------------------------------------------------------------------


def _children_map() -> t.Dict[int, t.List[int]]:
    children: t.Dict[int, t.List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _descendants(root: int) -> t.List[int]:
    children = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _memory_kib(pid: int) -> t.Tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


class TreeSampler(threading.Thread):
    """Samples the memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_pss_kib = 0
        self.peak_rss_kib = 0
        self.peak_processes = 0
        self.largest_rss_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = _descendants(self.pid)
            pss = rss = 0
            for pid in pids:
                p, r = _memory_kib(pid)
                pss += p
                rss += r
                self.largest_rss_kib = max(self.largest_rss_kib, r)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def process_cpu(pid: t.Optional[int]) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    if not pid:
        return 0.0
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------
# The bench: servers, environment, running ansible-playbook
# --------------------------------------------------------------------------------------


class Run(t.NamedTuple):
    rc: int
    wall: float
    cpu: float
    server_cpu: float
    peak_pss_mib: float
    peak_rss_mib: float
    largest_rss_mib: float
    peak_processes: int
    timings: t.List[dict]
    output_path: str


class Bench:
    def __init__(self) -> None:
        os.makedirs(BUILD, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix="run-", dir=BUILD)
        self.bao = OpenBaoDev(os.path.join(self.workdir, "openbao"))
        self.emulator = Emulator(os.path.join(self.workdir, "emulator"))
        self.collections = os.path.join(self.workdir, "collections")
        os.makedirs(os.path.join(self.collections, "ansible_collections", "apikeys"))
        os.symlink(REPO, os.path.join(self.collections, "ansible_collections", "apikeys", "rotation"))
        self.baseline_collections = self._find_baseline_collections()
        paths = [self.collections] + ([self.baseline_collections] if self.baseline_collections else [])
        self.ansible = AnsibleEnv(os.path.join(self.workdir, "ansible"), os.pathsep.join(paths))
        self.admin_key = ""
        self.runs = 0
        self._vault = None

    @staticmethod
    def _find_baseline_collections() -> t.Optional[str]:
        configured = os.environ.get("BENCH_BASELINE_COLLECTIONS")
        candidates = [configured] if configured else glob.glob(
            os.path.join(REPO, ".build", "bench-venv", "lib", "python3*", "site-packages"))
        for path in candidates:
            if path and os.path.isdir(os.path.join(path, "ansible_collections", "community", "hashi_vault")):
                return path
        return None

    def start(self) -> "Bench":
        self.bao.start()
        self.emulator.start()
        import hvac  # the dev venv has it; used only for seeding and out-of-band checks
        self._vault = hvac.Client(url=self.bao.addr, token=self.bao.root_token)
        self.reset()
        return self

    def stop(self) -> None:
        self.emulator.stop()
        self.bao.stop()

    # -- state ---------------------------------------------------------------------

    def reset(self) -> None:
        """A clean provider: no keys, no faults; a fresh management key."""
        self.emulator.control("POST", "reset")
        self.admin_key = self.emulator.control("POST", "keys", {"provider": PROVIDER, "kind": "admin"})["value"]

    def new_key(self, name: str) -> dict:
        return self.emulator.control("POST", "keys", {"provider": PROVIDER, "kind": "api", "name": name})

    def write_secret(self, path: str, value: str) -> None:
        self._vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"api_key": value}, mount_point="secret")

    def read_secret(self, path: str) -> str:
        read = self._vault.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
        return read["data"]["data"]["api_key"]

    def provider_keys(self) -> t.Dict[str, dict]:
        return {k["id"]: k for k in self.emulator.control("GET", "state")[PROVIDER]["keys"]}

    def seed(self, prefix: str, count: int) -> t.List[t.Tuple[str, str, dict]]:
        """``count`` keys in use, each in Vault at its own path: [(host, vault_path, key)]."""
        seeded = []
        for index in range(1, count + 1):
            host = "key-%03d" % index
            key = self.new_key("%s-initial" % host)
            path = "bench/%s/%s" % (prefix, host)
            self.write_secret(path, key["value"])
            seeded.append((host, path, key))
        return seeded

    def check_rotated(self, seeded: t.Sequence[t.Tuple[str, str, dict]]) -> None:
        """Out of band: Vault's newest key is a new active key and the old key is disabled."""
        keys = self.provider_keys()
        for host, path, old in seeded:
            value = self.read_secret(path)
            new = [k for k in keys.values() if k["fingerprint"] == fingerprint(value)]
            if value == old["value"] or len(new) != 1 or new[0]["status"] != "active":
                raise RuntimeError("%s: Vault does not hold a new active key after the run" % host)
            if keys[old["id"]]["status"] != "disabled":
                raise RuntimeError("%s: the old key is %s, not disabled" % (host, keys[old["id"]]["status"]))

    # -- running ---------------------------------------------------------------------

    def env(self, extra: t.Optional[dict] = None) -> dict:
        env = self.ansible.env({
            "VAULT_ADDR": self.bao.addr,
            "VAULT_TOKEN": self.bao.root_token,
            "OPENROUTER_MANAGEMENT_KEY": self.admin_key,
            "OPENROUTER_BASE_URL": self.emulator.base_url(PROVIDER),
            "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join([TIMER_DIR, CALLBACK_DIR]),
            "ANSIBLE_CALLBACKS_ENABLED": "task_timer",
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_PIPELINING": "true" if PIPELINING else "false",
        })
        if not BYTECODE:  # the harness's cache (PYTHONPYCACHEPREFIX) off
            env.pop("PYTHONPYCACHEPREFIX", None)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def run(self, playbook: t.Union[str, list], inventory: dict, extra_vars: t.Optional[dict] = None,
            forks: int = 5, env: t.Optional[dict] = None, sample: bool = False, timeout: float = 3600,
            worker_times: bool = False) -> Run:
        self.runs += 1
        run_dir = os.path.join(self.workdir, "run-%03d" % self.runs)
        os.makedirs(run_dir)
        if not isinstance(playbook, str):
            path = os.path.join(run_dir, "playbook.yml")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(playbook, handle, indent=1)
            playbook = path
        inventory_path = os.path.join(run_dir, "inventory.yml")
        with open(inventory_path, "w", encoding="utf-8") as handle:
            json.dump(inventory, handle)
        cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook, "-i", inventory_path, "-f", str(forks)]
        if extra_vars:
            vars_path = os.path.join(run_dir, "extra_vars.json")
            with open(vars_path, "w", encoding="utf-8") as handle:
                json.dump(extra_vars, handle)
            cmd += ["-e", "@" + vars_path]
        timings_path = os.path.join(run_dir, "timings.jsonl")
        output_path = os.path.join(run_dir, "output.txt")
        run_env = self.env(dict(env or {}, APIKEYS_BENCH_TIMINGS=timings_path))
        if worker_times:  # each worker timed in parts (benchmarks/worker_times.py): never for a timed run
            cmd = [os.path.join(BIN_DIR, "python"), WORKER_TIMES] + cmd
            run_env["APIKEYS_BENCH_WORKER_TIMES"] = os.path.join(run_dir, "worker_times.jsonl")
        server_before = process_cpu(self.bao.pid) + process_cpu(self.emulator.proc.pid if self.emulator.proc else None)
        cpu_before = children_cpu()
        with open(output_path, "w", encoding="utf-8") as out:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=run_dir, env=run_env, stdout=out, stderr=subprocess.STDOUT)
            sampler = TreeSampler(proc.pid) if sample else None
            if sampler:
                sampler.start()
            try:
                rc = proc.wait(timeout=timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if sampler:
                    sampler.stop()
            wall = time.monotonic() - started
        cpu = children_cpu() - cpu_before
        server_cpu = process_cpu(self.bao.pid) + process_cpu(self.emulator.proc.pid if self.emulator.proc else None) - server_before
        timings = []
        if os.path.exists(timings_path):
            with open(timings_path, encoding="utf-8") as handle:
                timings = [json.loads(line) for line in handle if line.strip()]
        return Run(rc, wall, cpu, server_cpu,
                   sampler.peak_pss_kib / 1024.0 if sampler else 0.0,
                   sampler.peak_rss_kib / 1024.0 if sampler else 0.0,
                   sampler.largest_rss_kib / 1024.0 if sampler else 0.0, sampler.peak_processes if sampler else 0, timings, output_path)


def require_ok(run: Run, what: str) -> None:
    if run.rc != 0:
        with open(run.output_path, encoding="utf-8") as handle:
            tail = handle.read()[-4000:]
        raise RuntimeError("%s failed (rc %d); output in %s:\n%s" % (what, run.rc, run.output_path, tail))


LOCALHOST = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                             "ansible_python_interpreter": sys.executable}}}}


# --------------------------------------------------------------------------------------
# imports: python -X importtime
# --------------------------------------------------------------------------------------


def import_profile(module: str, repeats: int, collections: str) -> dict:
    """Best-of-``repeats`` import of ``module``: total self time (ms) per top-level group, heavy libraries."""
    best: t.Optional[dict] = None
    env = dict(os.environ, PYTHONPATH=collections)
    for dummy in range(repeats):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + module],
                             capture_output=True, text=True, env=env, check=True).stderr
        total = 0
        groups: t.Dict[str, int] = {}
        loaded = set()
        for line in err.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if not match:
                continue
            name = match.group(4)
            self_us = int(match.group(1))
            total += self_us
            if name.startswith("ansible_collections."):
                group = "collection"
            elif name.startswith("ansible."):
                group = "ansible"
            else:
                group = name.split(".")[0]
            groups[group] = groups.get(group, 0) + self_us
            if name in HEAVY:
                loaded.add(name)
        if best is None or total < best["total_ms"] * 1000:
            best = {"total_ms": total / 1000.0, "groups_ms": {k: v / 1000.0 for k, v in groups.items()},
                    "heavy": sorted(loaded)}
    assert best is not None
    return best


def section_imports(bench: Bench, results: dict) -> None:
    repeats = int(knob("BENCH_IMPORT_REPEATS", "7"))
    say("\n## Imports (python -X importtime, best of %d, ms)\n" % repeats)
    rows = []
    data = {}
    ping = import_profile("ansible.modules.ping", repeats, bench.collections)
    data["ping"] = ping
    for name in MODULES:
        data[name] = import_profile(COLL + name, repeats, bench.collections)
    for name, prof in data.items():
        groups = prof["groups_ms"]
        third = {k: v for k, v in groups.items() if k not in ("ansible", "collection")}
        top = sorted(third.items(), key=lambda kv: -kv[1])[:4]
        wrong = [lib for lib in prof["heavy"] if (name in VAULT_MODULES and lib.startswith(("httpx", "httpcore")))
                 or (name not in VAULT_MODULES and name != "ping" and lib in ("hvac", "requests"))
                 or lib in ("rich", "click", "pygments")]
        rows.append((name, "%.0f" % prof["total_ms"], "%+.0f" % (prof["total_ms"] - ping["total_ms"]),
                     "%.0f" % groups.get("ansible", 0), "%.0f" % groups.get("collection", 0),
                     ", ".join("%s %.0f" % kv for kv in top),
                     " ".join(lib for lib in prof["heavy"] if lib in NAMED) or "-",
                     "NO: " + " ".join(wrong) if wrong else "yes"))
    say(table(("module", "total", "vs ping", "ansible.*", "collection", "largest others", "heavy libraries", "clean"), rows))
    results["imports"] = data


# --------------------------------------------------------------------------------------
# process: the AnsiballZ payload of each module, executed directly
# --------------------------------------------------------------------------------------


def module_tasks(index: int, seeds: dict) -> t.Dict[str, dict]:
    """One task per module, doing the work it does in a rotation, for round ``index``."""
    return {
        "ping": {"ansible.builtin.ping": {}},
        "vault_secret_info": {"apikeys.rotation.vault_secret_info": {"path": seeds["info_path"]}},
        "vault_secret_write": {"apikeys.rotation.vault_secret_write": {
            "path": seeds["write_path"], "data": {"api_key": "bench-value-%d" % index},
            "custom_metadata": {"round": str(index)}}, "no_log": True},
        # a new lease each round, guarding a secret that does not exist (so the plan it compares with is empty)
        "vault_lease": {"apikeys.rotation.vault_lease": {
            "state": "taken", "path": "%s-%d.lock" % (seeds["write_path"], index), "owner": "bench-%d" % index,
            "host": "bench", "holder": "{{ none | apikeys.rotation.lease_holder }}", "ttl_seconds": 60,
            "secret_path": seeds["write_path"] + "-absent", "planned": {}}},
        "provider_key_info": {"apikeys.rotation.provider_key_info": {"provider": PROVIDER, "name": "bench-info"}},
        "api_key_probe": {"apikeys.rotation.api_key_probe": {"provider": PROVIDER, "api_key": "{{ bench_probe_key }}"},
                          "no_log": True},
        "provider_key_create": {"apikeys.rotation.provider_key_create": {
            "provider": PROVIDER, "name": "bench-create-%d" % index, "on_existing": "revoke"}, "no_log": True},
        "provider_key_revoke": {"apikeys.rotation.provider_key_revoke": {
            "provider": PROVIDER, "key_id": seeds["revoke_ids"][index % len(seeds["revoke_ids"])], "state": "disabled"}},
    }


def module_seeds(bench: Bench, rounds: int) -> dict:
    bench.reset()
    probe = bench.new_key("bench-probe")
    bench.new_key("bench-info")
    info_path = "bench/modules/info-%d" % bench.runs
    write_path = "bench/modules/write-%d" % bench.runs
    bench.write_secret(info_path, probe["value"])
    revoke_ids = [bench.new_key("bench-revoke-%d" % i)["id"] for i in range(rounds)]
    return {"info_path": info_path, "write_path": write_path, "revoke_ids": revoke_ids, "probe_value": probe["value"]}


def section_process(bench: Bench, results: dict) -> None:
    repeats = int(knob("BENCH_PROCESS_N", "10"))
    seeds = module_seeds(bench, 1)
    remote_tmp = os.path.join(bench.workdir, "kept-remote-tmp")
    names = ("ping",) + MODULES
    tasks = []
    for name, task in module_tasks(0, seeds).items():
        tasks.append(dict(task, name=name))
    play = [{"name": "keep the payloads", "hosts": "all", "gather_facts": False,
             "vars": {"bench_probe_key": seeds["probe_value"]}, "tasks": tasks}]
    run = bench.run(play, LOCALHOST, env={"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": remote_tmp,
                                          "ANSIBLE_PIPELINING": "false"})
    require_ok(run, "the payload run")
    payloads = {}
    for name in names:
        found = glob.glob(os.path.join(remote_tmp, "ansible-tmp-*", "AnsiballZ_%s.py" % name))
        if len(found) != 1:
            raise RuntimeError("expected one kept payload of %s, found %d" % (name, len(found)))
        payloads[name] = found[0]
    env = bench.env()
    samples: t.Dict[str, t.Dict[str, t.List[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for index in range(repeats + 1):
        order = list(names[index % len(names):] + names[:index % len(names)])
        for name in order:
            before = children_cpu()
            started = time.monotonic()
            proc = subprocess.run([sys.executable, payloads[name]], env=env, capture_output=True, check=False)
            wall = time.monotonic() - started
            cpu = children_cpu() - before
            if proc.returncode != 0 and name != "provider_key_create":
                raise RuntimeError("payload of %s failed: %s" % (name, proc.stdout.decode()[-2000:]))
            if index:  # the first round warms the page cache
                samples[name]["wall"].append(wall)
                samples[name]["cpu"].append(cpu)
    ping_wall = median(samples["ping"]["wall"])
    ping_cpu = median(samples["ping"]["cpu"])
    say("\n## Module process alone (AnsiballZ payload run directly, median of %d, ms)\n" % repeats)
    rows = []
    for name in names:
        wall = median(samples[name]["wall"])
        cpu = median(samples[name]["cpu"])
        rows.append((name, "%.0f" % (wall * 1000), "%+.0f" % ((wall - ping_wall) * 1000), "%.2f" % (wall / ping_wall),
                     "%.0f" % (cpu * 1000), "%+.0f" % ((cpu - ping_cpu) * 1000)))
    say(table(("module", "wall", "vs ping", "ratio", "CPU", "CPU vs ping"), rows))
    results["process"] = {n: {k: [round(v, 4) for v in vals] for k, vals in s.items()} for n, s in samples.items()}
    shutil.rmtree(remote_tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------
# modules: per-task time inside ansible-playbook
# --------------------------------------------------------------------------------------


def section_modules(bench: Bench, results: dict) -> None:
    rounds = int(knob("BENCH_N", "20"))
    seeds = module_seeds(bench, rounds + 1)
    names = ["ping"] + list(MODULES)
    peers = {}
    if bench.baseline_collections:
        peers = {
            "community.hashi_vault.vault_kv2_get": {"community.hashi_vault.vault_kv2_get": {
                "path": seeds["info_path"], "url": "{{ lookup('ansible.builtin.env', 'VAULT_ADDR') }}",
                "token": "{{ lookup('ansible.builtin.env', 'VAULT_TOKEN') }}"}, "no_log": True},
            "ansible.builtin.uri (probe)": {"ansible.builtin.uri": {
                "url": "{{ lookup('ansible.builtin.env', 'OPENROUTER_BASE_URL') }}/key",
                "headers": {"Authorization": "Bearer {{ bench_probe_key }}"}}, "no_log": True},
        }
        names += list(peers)
    tasks = []
    # Round 0 warms up (AnsiballZ payload cache, page cache) and is not counted.
    for index in range(rounds + 1):
        per_round = dict(module_tasks(index, seeds), **peers)
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            tasks.append(dict(per_round[name], name="%s #%d" % (name, index)))
    play = [{"name": "per-module cost", "hosts": "all", "gather_facts": False,
             "vars": {"bench_probe_key": seeds["probe_value"]}, "tasks": tasks}]
    run = bench.run(play, LOCALHOST)
    require_ok(run, "the per-module run")
    samples: t.Dict[str, t.List[float]] = {n: [] for n in names}
    for row in run.timings:
        name, dummy, index = row["task"].rpartition(" #")
        if name in samples and int(index) > 0:
            samples[name].append(row["seconds"])
    ping = median(samples["ping"])
    say("\n## Per task inside ansible-playbook (median of %d interleaved rounds, ms)\n" % rounds)
    rows = []
    summary = {}
    for name in names:
        value = median(samples[name])
        ratio = value / ping
        summary[name] = {"median_s": round(value, 4), "ratio": round(ratio, 3),
                         "samples": [round(v, 4) for v in samples[name]]}
        target = "-" if name == "ping" or name in peers else ("met" if ratio <= MODULE_TARGET else "NOT met")
        rows.append((name, "%.0f" % (value * 1000), "%+.0f" % ((value - ping) * 1000), "%.2f" % ratio,
                     "%.0f-%.0f" % (min(samples[name]) * 1000, max(samples[name]) * 1000), target))
    say(table(("task", "median", "vs ping", "ratio to ping", "range", "target <= %.2f" % MODULE_TARGET), rows))
    say("\nWall time of the whole run: %.1f s for %d tasks." % (run.wall, len(tasks)))
    results["modules"] = summary


# --------------------------------------------------------------------------------------
# rotation and fleet: the role against the naive baseline
# --------------------------------------------------------------------------------------


def role_side(seeded: t.Sequence[t.Tuple[str, str, dict]]) -> t.Tuple[str, dict, dict]:
    hosts = {host: {"provider": PROVIDER, "vault_path": path, "current_key_id": key["id"], "allow_without_deploy": True}
             for host, path, key in seeded}
    extra: t.Dict[str, t.Any] = {"rotate_force": True, "rotate_probe_delay": 0, "rotate_check_delay": 0}
    if NO_PIPELINING:
        extra["ansible_pipelining"] = False
    return "apikeys.rotation.rotate", {"api_keys": {"hosts": hosts}}, extra


def pipelining_of_sides() -> t.Dict[str, str]:
    """Whether each side of the rotation and fleet comparisons runs with pipelining, and why."""
    if PIPELINING:
        return {"role": "on (ANSIBLE_PIPELINING=true)", "baseline": "on (ANSIBLE_PIPELINING=true)"}
    if NO_PIPELINING:
        return {"role": "off (-e ansible_pipelining=false)", "baseline": "off"}
    role = "off (the ansible-core default)"
    with open(os.path.join(REPO, "playbooks", "rotate.yml"), encoding="utf-8") as handle:
        found = re.search(r"^\s+ansible_pipelining:\s*(.*)$", handle.read(), re.M)
        if found and "true" in found.group(1).lower():
            role = "on (ansible_pipelining in playbooks/rotate.yml)"
    return {"role": role, "baseline": "off (the ansible-core default)"}


def baseline_side(seeded: t.Sequence[t.Tuple[str, str, dict]]) -> t.Tuple[list, dict, dict]:
    hosts = {host: {"vault_path": path} for host, path, dummy in seeded}
    play = [{
        "name": "Rotate OpenRouter keys (naive baseline)",
        "hosts": "all",
        "gather_facts": False,
        "connection": "local",
        "vars": {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "openrouter_base_url": "{{ lookup('ansible.builtin.env', 'OPENROUTER_BASE_URL') }}",
            "management_key": "{{ lookup('ansible.builtin.env', 'OPENROUTER_MANAGEMENT_KEY') }}",
            "probe_retries": 30,
            "probe_delay": 0,
        },
        "module_defaults": {"group/community.hashi_vault.vault": {
            "url": "{{ lookup('ansible.builtin.env', 'VAULT_ADDR') }}",
            "token": "{{ lookup('ansible.builtin.env', 'VAULT_TOKEN') }}",
            "engine_mount_point": "secret"}},
        "tasks": [{"name": "Rotate", "ansible.builtin.import_tasks": BASELINE_TASKS}],
    }]
    return play, {"api_keys": {"hosts": hosts}}, {}


def rotate_once(bench: Bench, side: str, keys: int, forks: int, sample: bool, worker_times: bool = False,
                collections: t.Optional[str] = None) -> Run:
    """One checked rotation of ``keys`` fresh keys by the role or the baseline; ``collections``: the
    role from that ansible_collections tree instead of the working tree's."""
    bench.reset()
    seeded = bench.seed("%s-%d" % (side, bench.runs + 1), keys)
    playbook, inventory, extra = (role_side if side == "role" else baseline_side)(seeded)
    env = {"ANSIBLE_COLLECTIONS_PATH": collections} if collections else None
    run = bench.run(playbook, inventory, extra, forks=forks, env=env, sample=sample, worker_times=worker_times)
    require_ok(run, "the %s rotation of %d key(s)%s" % (side, keys, " by the role in " + collections if collections else ""))
    bench.check_rotated(seeded)
    return run


def warm_up(bench: Bench) -> None:
    """One untimed rotation of one key by each side: Python's bytecode cache then holds what they import."""
    for side in ("role", "baseline") if bench.baseline_collections else ("role",):
        rotate_once(bench, side, 1, 5, sample=False)


MODULE_ACTIONS = ("ansible.builtin.uri", "ansible.builtin.ping")
# Targets: a module's task (in the controller's process) at most 0.3x ansible.builtin.ping's,
# one rotation with all its safety at most 0.5x the naive baseline, in wall and CPU time.
MODULE_TARGET = 0.3
ROTATION_TARGET = 0.5
IN_PROCESS = os.environ.get("APIKEYS_IN_PROCESS", "").strip().lower() not in ("0", "false", "no", "off")


def runs_module(action: str) -> bool:
    """Whether a task runs a module process (the others are handled in the controller's worker).

    The collection's modules run in the worker (their action plugins) unless APIKEYS_IN_PROCESS=false.
    """
    if action.startswith("apikeys.rotation."):
        return not IN_PROCESS
    return action.startswith("community.hashi_vault.") or action in MODULE_ACTIONS


def executions(row: dict) -> int:
    """Module processes one timed task ran: one per loop item (or one) plus one per until retry."""
    if row["status"] == "skipped" or not runs_module(row["action"]):
        return 0
    return (row.get("items") or 1) + row.get("retries", 0)


def run_executions(run: Run) -> int:
    return sum(executions(row) for row in run.timings)


def breakdown(run: Run) -> t.List[t.Tuple[str, int, int, float]]:
    """(kind, tasks, module executions, seconds) for one host: module tasks, controller-only tasks, skipped tasks."""
    kinds: t.Dict[str, t.List[dict]] = {}
    for row in run.timings:
        action = row["action"]
        if row["status"] == "skipped":
            kind = "skipped tasks"
        elif runs_module(action):
            kind = action
        elif action.startswith("apikeys.rotation."):
            kind = action + " (in-process)"
        else:
            kind = "controller-side (set_fact, assert, include, debug, ...)"
        kinds.setdefault(kind, []).append(row)
    return sorted(((k, len(v), sum(executions(r) for r in v), sum(r["seconds"] for r in v)) for k, v in kinds.items()),
                  key=lambda kv: -kv[3])


def floor_side(tasks: int) -> t.Tuple[list, dict, dict]:
    """A play of ``tasks`` no-op tasks on one local host: what ansible-playbook costs with nothing to do."""
    play = [{"name": "No-op tasks (ansible-core's per-task floor)", "hosts": "all", "gather_facts": False,
             "connection": "local",
             "tasks": [{"name": "no-op %d" % index, "ansible.builtin.debug": {"msg": "nothing"}}
                       for index in range(tasks)]}]
    return play, {"all": {"hosts": {"floor": {}}}}, {}


def floor_report(walls: t.Dict[str, t.List[float]], cpus: t.Dict[str, t.List[float]], tasks: int) -> dict:
    """How much of the 0.5x budget ansible-core's own per-task cost leaves, from the floor plays' medians."""
    base, base_cpu = median(walls["baseline"]), median(cpus["baseline"])
    one, many = median(walls["floor-1"]), median(walls["floor-role"])
    per_task = (many - one) / (tasks - 1)
    fits = int((ROTATION_TARGET * base - one) / per_task) + 1 if per_task > 0 else 0
    floor_cpu = median(cpus["floor-role"])
    say("\nansible-core's floor, measured beside them: a play of %d no-op tasks (ansible.builtin.debug, as many as the "
        "role's tasks, run and skipped) takes %.2f s wall and %.2f s CPU, **%.2f** and **%.2f** of the baseline; a play "
        "of one no-op task %.2f s. Each no-op task costs %.0f ms, so within %.2fx the baseline (%.2f s) a playbook fits "
        "at most %d tasks that do nothing."
        % (tasks, many, floor_cpu, many / base, floor_cpu / base_cpu, one, per_task * 1000, ROTATION_TARGET,
           ROTATION_TARGET * base, fits))
    # the role's own tasks: what each costs on average beyond a one-task play's start-up, and how many of those fit
    role_per_task = (median(walls["role"]) - one) / tasks
    role_fits = int((ROTATION_TARGET * base - one) / role_per_task) if role_per_task > 0 else 0
    say("A task of the role costs %.0f ms on average (the role's wall time less the one-task play's, over its %d tasks; "
        "its own start-up, the role's parsing and the hvac and httpx imports, included): at that cost, %.2fx the baseline "
        "fits %d of them." % (role_per_task * 1000, tasks, ROTATION_TARGET, role_fits))
    return {"tasks": tasks, "wall": round(many, 3), "cpu": round(floor_cpu, 3), "one_task_wall": round(one, 3),
            "per_task_ms": round(per_task * 1000, 1), "ratio": round(many / base, 3),
            "cpu_ratio": round(floor_cpu / base_cpu, 3), "tasks_within_target": fits,
            "role_per_task_ms": round(role_per_task * 1000, 1), "role_tasks_within_target": role_fits}


# the parts benchmarks/worker_times.py times inside a worker; the rest of the worker is what they leave
WORKER_PARTS = ("conditions", "templating", "action")


def worker_time_rows(run: Run) -> t.List[dict]:
    """The rows benchmarks/worker_times.py wrote for a run made with ``worker_times``: one per task and host."""
    with open(os.path.join(os.path.dirname(run.output_path), "worker_times.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def worker_parts(bench: Bench, side: str, tasks: int) -> dict:
    """One more run of the role's rotation or of the floor's no-op play, its workers timed in parts, summed."""
    if side == "role":
        run = rotate_once(bench, "role", 1, 5, sample=False, worker_times=True)
    else:
        run = bench.run(*floor_side(tasks), worker_times=True)
        require_ok(run, "the play of %d no-op tasks with its workers timed" % tasks)
    rows = worker_time_rows(run)
    sums = {part: sum(row.get(part, 0.0) for row in rows) for part in WORKER_PARTS + ("fork", "total")}
    sums["rest"] = sums["total"] - sum(sums[part] for part in WORKER_PARTS)
    # the tasks whose conditions and templating cost most, with that cost
    costliest = sorted(((row["task"], round(row.get("conditions", 0.0) + row.get("templating", 0.0), 4)) for row in rows),
                       key=lambda pair: -pair[1])[:5]
    return dict(sums, workers=len(rows), wall=run.wall, outside=run.wall - sums["total"] - sums["fork"], costliest=costliest)


def worker_report(parts: t.Dict[str, dict], role_wall: float, base_wall: float) -> dict:
    """Where the workers' time goes, role beside floor, and what the role would cost with no templating at all."""
    say("\nInside the workers (one more run of each, through benchmarks/worker_times.py, not among the timed runs; "
        "seconds summed over the run's workers):\n")
    say(table(("play", "workers", "wall s", "in the workers", "fork to worker", "conditions", "templating (post_validate)",
               "the action's run", "rest of the worker", "outside the workers"),
              [(side, p["workers"], "%.2f" % p["wall"], "%.2f" % p["total"], "%.2f" % p["fork"], "%.2f" % p["conditions"],
                "%.2f" % p["templating"], "%.2f" % p["action"], "%.2f" % p["rest"], "%.2f" % p["outside"])
               for side, p in parts.items()]))
    say("\nThe role's tasks whose conditions and templating cost most in that run: %s."
        % "; ".join("%s %.0f ms" % (name.split(" : ", 1)[-1], seconds * 1000) for name, seconds in parts["role"]["costliest"]))
    templating = parts["role"]["conditions"] + parts["role"]["templating"]
    bound = max(role_wall - templating, 0.0)
    say("\nThe role's conditions and templating take %.2f s of that run. Were they free, the median rotation above would "
        "take %.2f s, **%.2f** of the baseline's: the rest (the actions' work, ansible-core's per-worker and main-process "
        "work) is what a lower ratio has to come from." % (templating, bound, bound / base_wall))
    report: dict = {side: {k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()} for side, p in parts.items()}
    report["without_templating_ratio"] = round(bound / base_wall, 3)
    return report


def section_rotation(bench: Bench, results: dict) -> None:
    if not bench.baseline_collections:
        say("\n## One rotation: SKIPPED (no community.hashi_vault: run `make bench`, which installs .build/bench-venv)")
        return
    repeats = int(knob("BENCH_ROTATIONS", "5"))
    walls: t.Dict[str, t.List[float]] = {"role": [], "baseline": [], "floor-role": [], "floor-1": []}
    cpus: t.Dict[str, t.List[float]] = {"role": [], "baseline": [], "floor-role": [], "floor-1": []}
    last: t.Dict[str, Run] = {}
    role_tasks = 0
    for index in range(repeats):
        order = ("role", "baseline") if index % 2 == 0 else ("baseline", "role")
        for side in order:
            run = rotate_once(bench, side, 1, 5, sample=False)
            walls[side].append(run.wall)
            cpus[side].append(run.cpu)
            last[side] = run
        # ansible-core's floor beside them: as many no-op tasks as the role's first run had, and one
        role_tasks = role_tasks or len(last["role"].timings)
        for side, tasks in (("floor-role", role_tasks), ("floor-1", 1)):
            run = bench.run(*floor_side(tasks))
            require_ok(run, "the play of %d no-op task(s)" % tasks)
            walls[side].append(run.wall)
            cpus[side].append(run.cpu)
    role, base = median(walls["role"]), median(walls["baseline"])
    cpu_ratio = median(cpus["role"]) / median(cpus["baseline"])
    counts = {side: run_executions(last[side]) for side in ("role", "baseline")}
    pipelining = pipelining_of_sides()
    say("\n## One full rotation of one key (probe delay 0, median of %d alternating runs)\n" % repeats)
    say(table(("playbook", "wall s (median)", "runs", "CPU s (median)", "tasks run", "module tasks", "module executions",
               "pipelining"), [
        (side, "%.2f" % median(walls[side]), " ".join("%.2f" % w for w in walls[side]), "%.2f" % median(cpus[side]),
         sum(1 for r in last[side].timings if r["status"] != "skipped"),
         sum(1 for r in last[side].timings if r["status"] != "skipped" and runs_module(r["action"])),
         counts[side], pipelining[side])
        for side in ("role", "baseline")]))
    say("\nmodule executions per rotation: role %d, baseline %d" % (counts["role"], counts["baseline"]))
    say("ratio role / baseline, wall time: %.2f (target <= %.2f: %s)"
        % (role / base, ROTATION_TARGET, "met" if role / base <= ROTATION_TARGET else "NOT met"))
    say("ratio role / baseline, CPU time:  %.2f (target <= %.2f: %s)"
        % (cpu_ratio, ROTATION_TARGET, "met" if cpu_ratio <= ROTATION_TARGET else "NOT met"))
    floor = floor_report(walls, cpus, role_tasks)
    workers = worker_report({"role": worker_parts(bench, "role", role_tasks), "floor": worker_parts(bench, "floor", role_tasks)},
                            role, base)
    for side in ("role", "baseline"):
        say("\nWhere the %s's time goes (last run, one host):\n" % side)
        say(table(("kind", "tasks", "module executions", "seconds"),
                  [(k, n, e, "%.2f" % s) for k, n, e, s in breakdown(last[side])]))
        overhead = last[side].wall - sum(r["seconds"] for r in last[side].timings)
        say("\nansible-playbook start, parsing and between-task overhead: %.2f s" % overhead)
    results["rotation"] = {"walls": walls, "cpus": cpus, "ratio": round(role / base, 3), "cpu_ratio": round(cpu_ratio, 3),
                           "module_executions": counts, "pipelining": pipelining, "floor": floor, "workers": workers,
                           "breakdown": {s: breakdown(r) for s, r in last.items()},
                           "tasks": {s: [(r["task"], r["action"], r["status"], r["seconds"], executions(r)) for r in run.timings]
                                     for s, run in last.items()}}


def ref_collections(bench: Bench, ref: str) -> str:
    """An ansible_collections tree holding the collection as git ``ref`` has it (git archive, no checkout)."""
    tree = os.path.join(bench.workdir, "compare-tree")
    os.makedirs(tree)
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    collections = os.path.join(bench.workdir, "compare-collections")
    os.makedirs(os.path.join(collections, "ansible_collections", "apikeys"))
    os.symlink(tree, os.path.join(collections, "ansible_collections", "apikeys", "rotation"))
    return collections


def worker_rows(run: Run) -> t.Dict[str, float]:
    """Each task's worker time (seconds, fork included) in a run made with worker_times."""
    times: t.Dict[str, float] = {}
    for row in worker_time_rows(run):
        times[row["task"]] = times.get(row["task"], 0.0) + row.get("total", 0.0) + row.get("fork", 0.0)
    return times


def section_compare(bench: Bench, results: dict) -> None:
    ref = knob("BENCH_COMPARE_REF", "HEAD")
    repeats = int(knob("BENCH_ROTATIONS", "5"))
    sides = {"ref": ref_collections(bench, ref), "tree": bench.collections}
    walls: t.Dict[str, t.List[float]] = {"ref": [], "tree": []}
    cpus: t.Dict[str, t.List[float]] = {"ref": [], "tree": []}
    for index in range(repeats):
        for side in ("ref", "tree") if index % 2 == 0 else ("tree", "ref"):
            run = rotate_once(bench, "role", 1, 5, sample=False, collections=sides[side])
            walls[side].append(run.wall)
            cpus[side].append(run.cpu)
    tasks = {side: worker_rows(rotate_once(bench, "role", 1, 5, sample=False, worker_times=True, collections=sides[side]))
             for side in ("ref", "tree")}
    wall_ratio = median(walls["tree"]) / median(walls["ref"])
    cpu_ratio = median(cpus["tree"]) / median(cpus["ref"])
    say("\n## The working tree's role beside %s's (one rotation, median of %d alternating runs)\n" % (ref, repeats))
    say(table(("role", "wall s (median)", "runs", "CPU s (median)"), [
        (side if side == "tree" else ref, "%.2f" % median(walls[side]), " ".join("%.2f" % w for w in walls[side]),
         "%.2f" % median(cpus[side])) for side in ("ref", "tree")]))
    say("\nratio working tree / %s: wall %.3f, CPU %.3f" % (ref, wall_ratio, cpu_ratio))
    changed = sorted(set(tasks["ref"]) | set(tasks["tree"]),
                     key=lambda name: -abs(tasks["tree"].get(name, 0.0) - tasks["ref"].get(name, 0.0)))[:10]
    say("\nThe tasks whose workers changed most (one more run of each, benchmarks/worker_times.py; ms, fork included; "
        "a task one side does not have shows -):\n")
    say(table(("task", ref, "tree", "change"), [
        (name, "%.0f" % (tasks["ref"][name] * 1000) if name in tasks["ref"] else "-",
         "%.0f" % (tasks["tree"][name] * 1000) if name in tasks["tree"] else "-",
         "%+.0f" % ((tasks["tree"].get(name, 0.0) - tasks["ref"].get(name, 0.0)) * 1000)) for name in changed]))
    say("\nall workers: %s %.2f s, tree %.2f s" % (ref, sum(tasks["ref"].values()), sum(tasks["tree"].values())))
    results["compare"] = {"ref": ref, "walls": walls, "cpus": cpus, "ratio": round(wall_ratio, 3),
                          "cpu_ratio": round(cpu_ratio, 3), "workers": tasks}


def section_fleet(bench: Bench, results: dict) -> None:
    if not bench.baseline_collections:
        say("\n## Fleet: SKIPPED (no community.hashi_vault: run `make bench`, which installs .build/bench-venv)")
        return
    sizes = int_list("BENCH_FLEET_SIZES", "10")
    forks_list = int_list("BENCH_FLEET_FORKS", "10")
    repeats = int(knob("BENCH_FLEET_REPEATS", "1"))
    rows = []
    data = []
    for size in sizes:
        for forks in forks_list:
            for index in range(repeats):
                order = ("role", "baseline") if index % 2 == 0 else ("baseline", "role")
                for side in order:
                    try:
                        run = rotate_once(bench, side, size, forks, sample=True)
                    except RuntimeError as exc:  # one failed configuration does not cost the others
                        say("  fleet: %s, %d keys, forks %d FAILED: %s" % (side, size, forks, str(exc)[:2000]))
                        data.append({"side": side, "keys": size, "forks": forks, "error": str(exc)[:2000]})
                        continue
                    entry = {"side": side, "keys": size, "forks": forks, "wall": round(run.wall, 2),
                             "cpu": round(run.cpu, 2), "cpu_per_key": round(run.cpu / size, 3),
                             "server_cpu": round(run.server_cpu, 2), "peak_pss_mib": round(run.peak_pss_mib, 1),
                             "peak_rss_mib": round(run.peak_rss_mib, 1), "largest_rss_mib": round(run.largest_rss_mib, 1),
                             "peak_processes": run.peak_processes, "module_executions": run_executions(run)}
                    data.append(entry)
                    say("  fleet: %s" % json.dumps(entry))
    say("\n## Fleet (keys x forks; CPU = user+system of the whole ansible-playbook tree)\n")
    for entry in data:
        if "error" in entry:
            rows.append((entry["keys"], entry["forks"], entry["side"], "failed") + ("",) * 8)
            continue
        rows.append((entry["keys"], entry["forks"], entry["side"], "%.1f" % entry["wall"], "%.2f" % (entry["wall"] / entry["keys"]),
                     "%.1f" % entry["cpu"], "%.2f" % entry["cpu_per_key"], "%.1f" % entry["server_cpu"],
                     "%.0f" % entry["peak_pss_mib"], "%.0f" % entry["peak_rss_mib"], "%.0f" % entry["largest_rss_mib"],
                     entry["peak_processes"]))
    say(table(("keys", "forks", "playbook", "wall s", "wall s/key", "CPU s", "CPU s/key", "servers CPU s",
               "peak PSS MiB", "peak RSS sum MiB", "largest process MiB", "peak processes"), rows))
    results["fleet"] = data


# --------------------------------------------------------------------------------------


def versions(bench: Bench) -> dict:
    def version_of(dist: str) -> str:
        try:
            from importlib.metadata import version
            return version(dist)
        except Exception:  # pylint: disable=broad-except
            return "not installed"

    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu_model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            mem_kib = int(next(line.split()[1] for line in handle if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        pass
    bao = subprocess.run([bao_binary(), "version"], capture_output=True, text=True, check=False).stdout.strip()
    hashi_vault = ansible_package = "not installed"
    if bench.baseline_collections:
        found = glob.glob(os.path.join(bench.baseline_collections, "ansible-*.dist-info"))
        if found:
            ansible_package = os.path.basename(found[0])[len("ansible-"):-len(".dist-info")]
        manifest = os.path.join(bench.baseline_collections, "ansible_collections", "community", "hashi_vault", "MANIFEST.json")
        with open(manifest, encoding="utf-8") as handle:
            hashi_vault = json.load(handle)["collection_info"]["version"]
    return {
        "nproc": os.cpu_count(), "cpu": cpu_model, "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "ansible-core": version_of("ansible-core"), "hvac": version_of("hvac"), "httpx": version_of("httpx"),
        "openbao": bao, "community.hashi_vault": hashi_vault, "ansible (baseline only)": ansible_package,
    }


def main() -> int:
    sections = [s.strip() for s in knob("BENCH_SECTIONS", "imports,process,modules,rotation,fleet").split(",") if s.strip()]
    unknown = set(sections) - {"imports", "process", "modules", "rotation", "fleet", "compare"}
    if unknown:
        say("unknown BENCH_SECTIONS: %s" % ", ".join(sorted(unknown)))
        return 2
    out = knob("BENCH_OUT", os.path.join(BUILD, "results-%s.json" % time.strftime("%Y%m%d-%H%M%S")))
    bench = Bench()
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sections": sections, "pipelining": PIPELINING_KNOB or "as written",
                     "bytecode_cache": BYTECODE,
                     "load_before": os.getloadavg()}
    started = time.monotonic()
    try:
        bench.start()
        results["machine"] = versions(bench)
        say("# apikeys.rotation benchmark")
        say("\n" + table(("", ""), list(results["machine"].items())))
        say("\nload average at start: %.2f %.2f %.2f" % results["load_before"])
        sides = pipelining_of_sides()
        say("pipelining: the collection's rotate playbook %s; the baseline and the per-module plays %s"
            % (sides["role"], "on (ANSIBLE_PIPELINING=true)" if PIPELINING else "off"))
        if not bench.baseline_collections:
            say("(no community.hashi_vault found: the baseline comparisons are skipped)")
        say("bytecode cache: %s" % ("on (.build/pycache), filled by one untimed rotation of each side first" if BYTECODE
                                    else "off (BENCH_BYTECODE=0): every playbook compiles the collection's Python files"))
        if BYTECODE and any(section in sections for section in ("rotation", "fleet", "compare")):
            warm_up(bench)
        for section in sections:
            {"imports": section_imports, "process": section_process, "modules": section_modules,
             "rotation": section_rotation, "fleet": section_fleet, "compare": section_compare}[section](bench, results)
    finally:
        bench.stop()
        results["load_after"] = os.getloadavg()
        results["seconds"] = round(time.monotonic() - started, 1)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, default=str)
    say("\nload average at end: %.2f %.2f %.2f; total %.0f s; raw data: %s"
        % (results["load_after"] + (results["seconds"], os.path.relpath(out, REPO))))
    shutil.rmtree(bench.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
