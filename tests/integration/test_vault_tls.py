# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A production-like Vault: raft storage, TLS with a CA made here, AppRole with the least policy of docs/vault.md.

The collection never gets the root token: it logs in with AppRole, its role has exactly the policy
docs/vault.md gives (read from that page), and it trusts only the CA given through VAULT_CACERT,
through the ca_cert option, or as AWX hands it over (a CA file and VAULT_SECRET_ID_FILE). Side
effects are read out of band with plain hvac and the root token.
"""

from __future__ import annotations

import os
import re
import threading
import uuid

import pytest

from conftest import assert_no_secret
from harness import REPO_ROOT, OpenBaoTLS
from test_rotation import CLEANUP, HOST, PROBE, ROLLBACK, ROTATE, Setup, fp, recap_changed

DOC = os.path.join(REPO_ROOT, "docs", "vault.md")
MOUNT, PREFIX = "kv-prod", "apps"


def doc_policy(name: str) -> str:
    """The policy text of docs/vault.md marked ``<!-- policy:NAME -->``, with this server's mount and prefix."""
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"<!-- policy:%s -->\s*```hcl\n(.*?)```" % re.escape(name), text, re.S)
    assert match, "docs/vault.md has no policy block %r" % name
    return match.group(1).replace("<mount>", MOUNT).replace("<prefix>", PREFIX)


@pytest.fixture(scope="module")
def tls_openbao(tmp_path_factory):
    server = OpenBaoTLS(str(tmp_path_factory.mktemp("openbao-tls")), mount=MOUNT, prefix=PREFIX).start()
    yield server
    server.stop()


@pytest.fixture()
def approle(tls_openbao):
    return tls_openbao.approle("rotation", doc_policy("rotation"))


def vault_env(server, creds, how="env", tmp_path=None):
    """How the collection is told to reach the server: never the root token."""
    env = {"VAULT_ADDR": server.addr, "VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": creds["role_id"]}
    if how == "awx":
        # as an AWX credential type injects it: files in the job's private data directory
        secret_file = os.path.join(str(tmp_path), "secret_id")
        with open(secret_file, "w", encoding="utf-8") as handle:
            handle.write(creds["secret_id"])
        env.update(VAULT_SECRET_ID_FILE=secret_file, VAULT_CACERT=server.cafile)
    else:
        env["VAULT_SECRET_ID"] = creds["secret_id"]
        if how == "env":
            env["VAULT_CACERT"] = server.cafile
    return env


@pytest.fixture()
def tls_setup(tls_openbao, emulator, approle, request):
    path = "%s/%s-%s" % (PREFIX, request.node.name.replace("[", "-").replace("]", "")[:50], uuid.uuid4().hex[:8])

    def make(provider, how="env", tmp_path=None, suffix=""):
        return Setup(provider, tls_openbao, emulator, path + suffix, mount=MOUNT,
                     vault_env=vault_env(tls_openbao, approle, how, tmp_path))
    return make


def ca_option_playbook(cafile, entry_point):
    """A shipped playbook's play, with the CA given as the ca_cert option through module_defaults."""
    return [{"name": entry_point, "hosts": "all", "gather_facts": False, "connection": "local",
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "module_defaults": {"group/apikeys.rotation.vault": {"ca_cert": cafile}},
             "tasks": [{"name": "The role", "ansible.builtin.import_role": {"name": "apikeys.rotation.rotate",
                                                                            "tasks_from": entry_point}}]}]


# -- CA settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("provider, how", [("openrouter", "env"), ("openai", "option"), ("anthropic", "awx")])
def test_rotation_rollback_cleanup_and_probe_over_tls_with_approle(provider, how, tls_setup, tls_openbao, ansible,
                                                                   tmp_path):
    s = tls_setup(provider, how, tmp_path)
    if how == "option":
        rotate, cleanup, rollback, probe = (ca_option_playbook(tls_openbao.cafile, name)
                                            for name in ("main", "cleanup", "rollback", "probe"))
    else:
        rotate, cleanup, rollback, probe = ROTATE, CLEANUP, ROLLBACK, PROBE
    result = ansible.run_playbook(rotate, inventory=s.inventory(), env=s.env, extra_vars={"rotate_force": True})
    assert result.rc == 0, result
    new_value = s.assert_rotated()
    assert s.record()["fingerprint"] == fp(new_value)
    probed = ansible.run_playbook(probe, inventory=s.inventory(), env=s.env)
    assert probed.rc == 0 and recap_changed(probed) == 0, probed
    if provider == "openai":
        cleaned = ansible.run_playbook(cleanup, inventory=s.inventory(grace_period="0s"), env=s.env)
        assert cleaned.rc == 0, cleaned
        assert s.key(s.old["id"])["status"] == "deleted" and s.record()["previous_state"] == "deleted"
        outputs = result.output + probed.output + cleaned.output
    else:
        rolled = ansible.run_playbook(rollback, inventory=s.inventory(), env=s.env, args=["-l", HOST])
        assert rolled.rc == 0, rolled
        assert s.value() == s.old["value"] and s.key(s.old["id"])["status"] == "active"
        assert s.metadata()["current_version"] == 3
        outputs = result.output + probed.output + rolled.output
    assert_no_secret(outputs, s.old["value"], new_value, s.admin, s.env.get("VAULT_SECRET_ID", ""))


def test_wrong_ca_and_plain_http_fail_clearly_and_change_nothing(tls_setup, tls_openbao, ansible):
    s = tls_setup("openrouter")
    before_keys, before_meta = s.keys(), s.metadata()
    wrong = dict(s.env, VAULT_CACERT=tls_openbao.wrong_cafile)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), env=wrong, extra_vars={"rotate_force": True})
    assert result.rc != 0
    assert "TLS verification of the Vault server at %s failed" % tls_openbao.addr in result.output
    # the right CA in REQUESTS_CA_BUNDLE does not make a wrong VAULT_CACERT pass
    bundle = dict(wrong, REQUESTS_CA_BUNDLE=tls_openbao.cafile)
    result = ansible.run_playbook(ROTATE, inventory=s.inventory(), env=bundle, extra_vars={"rotate_force": True})
    assert result.rc != 0 and "TLS verification" in result.output
    # no CA at all: the system's CAs do not know this one
    no_ca = {k: v for k, v in s.env.items() if k != "VAULT_CACERT"}
    result = ansible.run_playbook(PROBE, inventory=s.inventory(), env=no_ca)
    assert result.rc != 0 and "TLS verification" in result.output
    # http:// aimed at the TLS listener
    plain = dict(s.env, VAULT_ADDR=tls_openbao.addr.replace("https://", "http://"))
    result = ansible.run_playbook(PROBE, inventory=s.inventory(), env=plain)
    assert result.rc != 0
    assert "speaks TLS, but url (or VAULT_ADDR) says http://" in result.output
    assert "Login failed" not in result.output
    assert s.keys() == before_keys and s.metadata() == before_meta


def test_read_only_policy_probes_and_cannot_rotate(tls_setup, tls_openbao, ansible):
    s = tls_setup("openrouter")
    reader = tls_openbao.approle("probe", doc_policy("probe"))
    env = vault_env(tls_openbao, reader)
    env.update({k: v for k, v in s.env.items() if not k.startswith("VAULT_")})
    probed = ansible.run_playbook(PROBE, inventory=s.inventory(), env=env)
    assert probed.rc == 0 and recap_changed(probed) == 0, probed
    before_keys, before_meta = s.keys(), s.metadata()
    refused = ansible.run_playbook(ROTATE, inventory=s.inventory(), env=env, extra_vars={"rotate_force": True})
    assert refused.rc != 0 and "Permission denied" in refused.output
    assert s.keys() == before_keys and s.metadata() == before_meta


def test_overlapping_rotations_over_tls_make_one_key(tls_setup, ansible):
    s = tls_setup("openrouter")
    results = []

    def run():
        results.append(ansible.run_playbook(ROTATE, inventory=s.inventory(), env=s.env,
                                            extra_vars={"rotate_force": True}))

    threads = [threading.Thread(target=run) for _attempt in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # one run rotates; the other finds the lease held ("rotation in progress") or the rotation done
    assert sorted(r.rc == 0 for r in results) in ([False, True], [True, True]), results
    for loser in (r for r in results if r.rc != 0):
        assert "rotation in progress in another run; this run changed nothing" in loser.output, loser
    new_value = s.assert_rotated()
    assert s.metadata()["current_version"] == 2
    assert len([k for k in s.keys() if k["status"] == "active"]) == 1
    assert s.record()["fingerprint"] == fp(new_value)


def test_one_login_per_key_and_run_revoked_at_the_end(tls_setup, tls_openbao, ansible, short_tmp):
    """The secret_id uses a run needs (docs/vault.md), counted on the server; every token is revoked at the end."""
    counted = tls_openbao.approle("counted", doc_policy("rotation"), secret_id_num_uses=100)
    s = tls_setup("openrouter")
    s.env.update(VAULT_ROLE_ID=counted["role_id"], VAULT_SECRET_ID=counted["secret_id"], TMPDIR=str(short_tmp))
    counts = {}
    for name, playbook, extra in (("rotate", ROTATE, {"rotate_force": True}), ("probe", PROBE, None),
                                  ("rollback", ROLLBACK, None), ("cleanup", CLEANUP, None)):
        uses, tokens = tls_openbao.secret_id_uses_left("counted", counted["secret_id"]), tls_openbao.token_count()
        result = ansible.run_playbook(playbook, inventory=s.inventory(), env=s.env, extra_vars=extra,
                                      args=["-l", HOST] if name == "rollback" else ())
        assert result.rc == 0, result
        counts[name] = uses - tls_openbao.secret_id_uses_left("counted", counted["secret_id"])
        assert tls_openbao.token_count() == tokens, "%s left a token unrevoked" % name
        assert not [n for n in os.listdir(str(short_tmp)) if n.startswith("apikeys-vault-")], "token file left behind"
    assert counts == {"rotate": 1, "probe": 1, "rollback": 1, "cleanup": 1}, counts
    with open(DOC, encoding="utf-8") as handle:
        doc = handle.read()
    for name, count in counts.items():
        assert "| %s | %d |" % (name, count) in doc, "docs/vault.md must give %s: %d logins (%s)" % (name, count, counts)

    # a secret_id of one use is enough for a rotation of one key ...
    limited = tls_openbao.approle("limited", doc_policy("rotation"), secret_id_num_uses=1)
    s2 = tls_setup("openrouter", suffix="-limited")
    s2.env.update(VAULT_ROLE_ID=limited["role_id"], VAULT_SECRET_ID=limited["secret_id"])
    result = ansible.run_playbook(ROTATE, inventory=s2.inventory(), env=s2.env, extra_vars={"rotate_force": True})
    assert result.rc == 0, result
    assert s2.metadata()["current_version"] == 2 and s2.record()["fingerprint"] == fp(s2.value())
    # ... and once it is used up, the next run cannot log in and changes nothing
    before_keys, before_meta = s2.keys(), s2.metadata()
    refused = ansible.run_playbook(ROTATE, inventory=s2.inventory(), env=s2.env, extra_vars={"rotate_force": True})
    assert refused.rc != 0 and "Vault | log in once for this run" in refused.output, refused
    assert "Login failed: could not log in with AppRole" in refused.output, refused
    assert s2.keys() == before_keys and s2.metadata() == before_meta
    assert_no_secret(result.output + refused.output, limited["secret_id"], s2.admin)


class _TLSListener(threading.Thread):
    """Accepts connections and, like a Go TLS server sent plain HTTP, closes them with the request unread.

    A TLS client completes its handshake; a plain HTTP request is reset, the side of the race in which
    the client never sees the server's ``400 Client sent an HTTP request to an HTTPS server``.
    """

    def __init__(self, directory: str) -> None:
        import socket
        import ssl

        from harness import make_ca, make_server_cert

        super().__init__(daemon=True)
        ca_key, ca_cert = make_ca(directory, "reset-ca")[1:]
        cert, key = make_server_cert(directory, ca_key, ca_cert)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshook = threading.Event()

    def stop(self) -> None:
        import socket

        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone would leave it listening
        self.sock.close()
        self.join(30)

    def run(self) -> None:
        import socket
        import struct

        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                first = conn.recv(1, socket.MSG_PEEK)
                if first == b"\x16":  # a TLS handshake record
                    try:
                        with self.context.wrap_socket(conn, server_side=True):
                            self.handshook.set()
                    except OSError:
                        pass
                else:  # close with the request unread and SO_LINGER 0: the client gets a reset
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_plain_http_reset_by_a_tls_server_is_named_as_such(tmp_path):
    """The 400 a TLS server sends to plain HTTP may be lost to the reset that follows it: the message must not depend on it."""
    requests = pytest.importorskip("requests")
    from ansible_collections.apikeys.rotation.plugins.module_utils import vault

    listener = _TLSListener(str(tmp_path))
    listener.start()
    url = "http://127.0.0.1:%d" % listener.port
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as raised:
            requests.get(url + "/v1/sys/health", timeout=5)
        err = vault.map_error(raised.value, vault.Op("read the secret", "secret/data/x", "read"), url, attempts=4)
        assert err.category == "tls" and "speaks TLS, but url (or VAULT_ADDR) says http://" in err.message, err.message
        assert listener.handshook.wait(30), "map_error named TLS without a handshake"
    finally:
        listener.stop()
    # nothing listening: refused, and no handshake is tried
    err = vault.map_error(raised.value, vault.Op("read the secret", "secret/data/x", "read"), url)
    assert err.category == "unreachable" and "Cannot reach the Vault server" in err.message
    assert not vault.speaks_tls(url, 1.0) and not vault.speaks_tls(url.replace("http:", "https:"), 1.0)
