"""The key file: content per format, refused modes, atomic private writes."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.deploy import files

KEY = "sk-ant-api03-" + "x" * 40


def test_content_in_each_format():
    assert files.content(KEY, "raw") == KEY.encode()
    assert files.content(KEY, "env", "ANTHROPIC_API_KEY") == ("ANTHROPIC_API_KEY=%s\n" % KEY).encode()
    manifest = json.loads(files.content(KEY, "kubernetes_secret", "ANTHROPIC_API_KEY",
                                        {"name": "signer-anthropic", "namespace": "signer"}, "sha256:0a1b2c3d4e5f"))
    assert manifest["kind"] == "Secret" and manifest["metadata"]["name"] == "signer-anthropic"
    assert manifest["metadata"]["annotations"] == {files.FINGERPRINT_ANNOTATION: "sha256:0a1b2c3d4e5f"}
    assert base64.b64decode(manifest["data"]["ANTHROPIC_API_KEY"]).decode() == KEY


@pytest.mark.parametrize("fmt, key_name, kubernetes, expected", [
    ("env", None, None, "key_name must be an environment variable name"),
    ("env", "A-B", None, "key_name must be an environment variable name"),
    ("kubernetes_secret", "K", {"name": "Bad_Name", "namespace": "ns"}, "kubernetes.name must be a Secret's name"),
    ("kubernetes_secret", "K", {"name": "ok", "namespace": "a.b"}, "kubernetes.namespace must be a namespace name"),
    ("kubernetes_secret", "a key", {"name": "ok", "namespace": "ns"}, "key_name must be a Secret data key"),
    ("yaml", None, None, "format must be one of raw, env, kubernetes_secret"),
])
def test_content_refuses_bad_settings(fmt, key_name, kubernetes, expected):
    with pytest.raises(RotationError) as caught:
        files.content(KEY, fmt, key_name, kubernetes, "sha256:0a1b2c3d4e5f")
    assert expected in str(caught.value) and KEY not in str(caught.value)


def test_a_key_with_a_line_break_is_refused_without_showing_it():
    with pytest.raises(RotationError) as caught:
        files.content(KEY + "\nX=1", "env", "K")
    assert "line break" in str(caught.value) and KEY not in str(caught.value)


def test_key_in_reads_back_each_format():
    assert files.key_in(files.content(KEY, "raw"), "raw") == KEY
    assert files.key_in(b"OTHER=1\nK='%s'\n" % KEY.encode(), "env", "K") == KEY
    assert files.key_in(b"OTHER=1\n", "env", "K") is None
    assert files.key_in(b"\xff\xfe", "raw") is None


@pytest.mark.parametrize("mode, expected", [("0600", 0o600), ("640", 0o640), ("0400", 0o400)])
def test_modes(mode, expected):
    assert files.parse_mode(mode) == expected


@pytest.mark.parametrize("mode, expected", [
    ("0644", "lets every user of the host read or change the key"),
    ("0602", "lets every user of the host read or change the key"),
    ("0200", "does not let the file's owner read it"),
    ("rw", "mode must be octal digits"),
    (None, "mode must be octal digits"),
    (416, "mode must be a quoted string"),
])
def test_refused_modes(mode, expected):
    with pytest.raises(RotationError) as caught:
        files.parse_mode(mode)
    assert expected in str(caught.value)


def test_write_replaces_atomically_with_mode(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    before_inode = path.stat().st_ino
    target = files.KeyFile(str(path))
    assert target.current() == b"old" and target.attributes()[0] == 0o644
    target.write(b"new", 0o600, -1, -1)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != before_inode  # a new file, renamed over the old one
    assert sorted(os.listdir(tmp_path)) == ["key"]  # no temporary file left


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "path must be an absolute path"),
    (lambda p: os.symlink("/etc/hostname", p), "is not a regular file"),
    (os.mkdir, "is not a regular file"),
])
def test_refused_paths(tmp_path, make, expected):
    path = tmp_path / "key"
    make(str(path))
    with pytest.raises(RotationError) as caught:
        files.KeyFile(str(path) if "absolute" not in expected else "relative/key")
    assert expected in str(caught.value)


def test_a_missing_directory_is_not_created(tmp_path):
    with pytest.raises(RotationError) as caught:
        files.KeyFile(str(tmp_path / "nowhere" / "key"))
    assert "does not exist" in str(caught.value) and not (tmp_path / "nowhere").exists()


def test_unknown_owner_and_group():
    with pytest.raises(RotationError, match="no user"):
        files.owner_ids("no-such-user-here", None)
    with pytest.raises(RotationError, match="no group"):
        files.owner_ids(None, "no-such-group-here")
    assert files.owner_ids("0", "0") == (0, 0)
    assert files.owner_ids(None, None) == (-1, -1)
