# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A key in a file on this host: the file's content in each format, and an atomic, private write.

The file is replaced by rename (a reader sees the old file or the new one, never half of one),
created with its final mode, owner and group before a byte of the key is written to it, and
synced to disk with its directory.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import tempfile
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError

FORMATS = ("raw", "env", "kubernetes_secret")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
DATA_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MODE_RE = re.compile(r"^0?[0-7]{3}$")
FINGERPRINT_ANNOTATION = "apikeys.rotation/key-fingerprint"


def parse_mode(value: t.Any) -> int:
    """The mode as a number: a string of octal digits (``0600``, ``640``); never readable by others."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise RotationError("mode must be a quoted string such as '0600': unquoted, YAML reads 0640 as the number %d "
                            "and 640 as a decimal number, got %d" % (0o640, value))
    text = value.strip() if isinstance(value, str) else ""
    if not MODE_RE.match(text):
        raise RotationError("mode must be octal digits such as 0600 or 0640 (quoted, so YAML keeps it a string), "
                            "got %r" % text[:20])
    mode = int(text, 8)
    if mode & 0o007:
        raise RotationError("mode %s lets every user of the host read or change the key: refused. Give the "
                            "application's group read access instead (group, mode 0640)" % text)
    if not mode & 0o400:
        raise RotationError("mode %s does not let the file's owner read it" % text)
    return mode


def content(value: str, fmt: str, key_name: t.Optional[str] = None,
            kubernetes: t.Optional[t.Mapping[str, t.Any]] = None, fingerprint: str = "") -> bytes:
    """The bytes of the file holding ``value`` in the format ``fmt``.

    raw: the key alone, no newline. env: ``NAME=key`` and a newline (systemd's EnvironmentFile,
    docker's --env-file). kubernetes_secret: a Secret manifest for ``kubectl apply -f`` or
    ``kubernetes.core.k8s src:``, the key base64-encoded under ``data``.
    """
    if "\n" in value or "\r" in value or "\x00" in value:
        raise RotationError("the key holds a line break or NUL byte and cannot be written to a file as one line. "
                            "Nothing was written")
    if fmt == "raw":
        return value.encode("utf-8")
    if fmt == "env":
        if not key_name or not ENV_NAME_RE.match(key_name):
            raise RotationError("key_name must be an environment variable name such as ANTHROPIC_API_KEY for "
                                "format=env, got %r" % str(key_name)[:80])
        return ("%s=%s\n" % (key_name, value)).encode("utf-8")
    if fmt == "kubernetes_secret":
        if not key_name or not DATA_KEY_RE.match(key_name):
            raise RotationError("key_name must be a Secret data key (letters, digits, -, _ and .) for "
                                "format=kubernetes_secret, got %r" % str(key_name)[:80])
        kubernetes = kubernetes or {}
        name, namespace = str(kubernetes.get("name") or ""), str(kubernetes.get("namespace") or "")
        if not DNS_NAME_RE.match(name):
            raise RotationError("kubernetes.name must be a Secret's name (lowercase letters, digits, - and .), got %r"
                                % name[:80])
        if not DNS_LABEL_RE.match(namespace):
            raise RotationError("kubernetes.namespace must be a namespace name (lowercase letters, digits and -), "
                                "got %r" % namespace[:80])
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        # JSON is YAML: no YAML library is needed to write a manifest any tool reads
        return ('{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", '
                '"metadata": {"name": "%s", "namespace": "%s", "annotations": {"%s": "%s"}}, '
                '"data": {"%s": "%s"}}\n' % (name, namespace, FINGERPRINT_ANNOTATION, fingerprint, key_name,
                                             encoded)).encode("utf-8")
    raise RotationError("format must be one of %s, got %r" % (", ".join(FORMATS), str(fmt)[:40]))


def key_in(data: bytes, fmt: str, key_name: t.Optional[str] = None) -> t.Optional[str]:
    """The key a file of format ``fmt`` holds, or None when it holds none in that format."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if fmt == "raw":
        return text.strip() or None
    if fmt == "env":
        for line in text.splitlines():
            name, sep, rest = line.partition("=")
            if sep and name.strip() == key_name:
                return rest.strip().strip("'\"") or None
    return None


def owner_ids(owner: t.Optional[str], group: t.Optional[str]) -> t.Tuple[int, int]:
    """The uid and gid for ``owner`` and ``group`` (names or numbers); -1 for the ones not given."""
    import grp
    import pwd

    uid = gid = -1
    if owner:
        try:
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise RotationError("owner: no user %r on this host. Nothing was written" % owner[:64])
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise RotationError("group: no group %r on this host. Nothing was written" % group[:64])
    return uid, gid


class KeyFile:
    """The file at ``path``: what it holds now and its attributes; :meth:`write` replaces it."""

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not os.path.isabs(path):
            raise RotationError("path must be an absolute path, got %r" % str(path)[:200])
        self.path = os.path.normpath(path)
        self.directory = os.path.dirname(self.path)
        if not os.path.isdir(self.directory):
            raise RotationError("path: the directory %s does not exist (it is not created: its owner and mode are "
                                "the application's choice). Nothing was written" % self.directory)
        try:
            self.stat: t.Optional[os.stat_result] = os.lstat(self.path)
        except FileNotFoundError:
            self.stat = None
        if self.stat is not None and not stat.S_ISREG(self.stat.st_mode):
            raise RotationError("path: %s exists and is not a regular file (a link or a directory): give the real "
                                "file's path. Nothing was written" % self.path)

    def current(self) -> t.Optional[bytes]:
        if self.stat is None:
            return None
        with open(self.path, "rb") as handle:
            return handle.read()

    def attributes(self) -> t.Optional[t.Tuple[int, int, int]]:
        """(mode, uid, gid) of the file now, or None when there is no file."""
        if self.stat is None:
            return None
        return stat.S_IMODE(self.stat.st_mode), self.stat.st_uid, self.stat.st_gid

    def write(self, data: bytes, mode: int, uid: int, gid: int) -> None:
        """Replace the file with ``data``, atomically: a private temporary file beside it, then rename."""
        handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.path), dir=self.directory)
        try:
            os.fchmod(handle, mode)
            if uid != -1 or gid != -1:
                os.fchown(handle, uid, gid)
            os.write(handle, data)
            os.fsync(handle)
            os.close(handle)
            handle = -1
            os.replace(temporary, self.path)
        except OSError as exc:
            if handle != -1:
                os.close(handle)
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise RotationError("path: cannot write %s (%s: %s). The file was left as it was"
                                % (self.path, exc.__class__.__name__, exc.strerror or exc))
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
