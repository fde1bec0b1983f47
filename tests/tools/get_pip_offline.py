# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for ansible-test's get-pip bootstrap download.

ansible-test runs ``get_pip_<version>.py`` from ``~/.ansible/test/cache`` with pip
install arguments (``pip==X`` and the other infrastructure packages). This script
bootstraps pip with the interpreter's own ``ensurepip`` and then installs exactly
those pinned packages from the package index, so no other host is needed.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)


if __name__ == "__main__":
    main()
