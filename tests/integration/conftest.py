# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures: real OpenBao servers, the provider emulator and an isolated ansible-playbook."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import tempfile
import uuid

import pytest

from harness import REPO_ROOT, AnsibleEnv, Emulator, OpenBaoDev, OpenBaoRaft, assert_no_secret

__all__ = ["assert_no_secret"]


_PREVIOUS_SIGTERM = pytest.StashKey()  # the SIGTERM handler to put back when the session ends


def _interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def pytest_configure(config):
    """A session stopped with SIGTERM tears its fixtures down as Ctrl-C does.

    The servers and emulators run in sessions of their own (start_new_session=True), so the
    default SIGTERM, which ends pytest at once, would leave them running. As a KeyboardInterrupt,
    pytest stops the test, runs every fixture's teardown and ends. Not in pytest-xdist's
    controller (``-n``), which holds no fixtures: ended at once, it closes its workers' channels
    and each worker tears its own fixtures down; interrupted, it would kill them first.
    """
    if getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        return
    config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)


def pytest_unconfigure(config):
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("apikeys"))


@pytest.fixture(scope="session")
def collections_path(session_dir):
    """A collections path holding this tree as apikeys.rotation (ansible-playbook follows the link)."""
    root = os.path.join(session_dir, "collections")
    namespace_dir = os.path.join(root, "ansible_collections", "apikeys")
    os.makedirs(namespace_dir, exist_ok=True)
    os.symlink(REPO_ROOT, os.path.join(namespace_dir, "rotation"))
    return root


@pytest.fixture(scope="session")
def openbao(session_dir):
    """One OpenBao dev server for the session; tests use unique secret paths (see ``kv_path``)."""
    server = OpenBaoDev(os.path.join(session_dir, "openbao-dev")).start()
    yield server
    server.stop()


# what Python's multiprocessing adds under TMPDIR for a Unix socket: /pymp-XXXXXXXX/listener-XXXXXXXX
_SOCKET_SUFFIX = 32
# the longest Unix socket path Linux accepts (sun_path holds 108 bytes with the terminating NUL)
_SOCKET_PATH_MAX = 107


@pytest.fixture()
def short_tmp():
    """A fresh directory with a short path, for tests that set TMPDIR.

    ansible-core 2.21 binds a Unix socket under TMPDIR when a play starts, and fails with "Local RPC
    server did not start." when that socket's path exceeds 107 bytes. pytest's ``tmp_path`` grows with
    its run counter (pytest-1, ..., pytest-111) and the test's name, so it is not used for TMPDIR.
    """
    path = tempfile.mkdtemp(prefix="ak-")
    assert len(path) + _SOCKET_SUFFIX <= _SOCKET_PATH_MAX, "the system's temporary directory %r is too long" % path
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def raft_openbao(tmp_path):
    """A persistent OpenBao for tests that seal, restart or stop the server."""
    server = OpenBaoRaft(str(tmp_path / "openbao-raft")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator_server(session_dir):
    server = Emulator(os.path.join(session_dir, "emulator")).start()
    yield server
    server.stop()


@pytest.fixture()
def emulator(emulator_server):
    """The provider emulator, reset to a clean state for each test."""
    emulator_server.control("POST", "reset")
    return emulator_server


@pytest.fixture()
def ansible(tmp_path, collections_path):
    return AnsibleEnv(str(tmp_path), collections_path)


@pytest.fixture()
def kv_path(request):
    """A secret path no other test uses."""
    return "tests/%s-%s" % (request.node.name.replace("[", "-").replace("]", "")[:60], uuid.uuid4().hex[:8])
