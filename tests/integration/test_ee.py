# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment definition (execution-environment.yml) makes a complete build context.

Building the image needs a container engine (podman or docker); ``ansible-builder create``
does everything before that: it validates the definition and writes the Containerfile and
the build context. The test runs it on a copy of the definition, next to a freshly built
collection tarball, and checks what an image build would get.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness import BIN_DIR, REPO_ROOT

BUILDER = os.path.join(BIN_DIR, "ansible-builder")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def pins(path: str) -> dict:
    """``name -> 'name==version'`` of a requirements file (comments and blank lines skipped)."""
    found = {}
    for line in read(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found[re.split(r"[=<>!~\[ ]", line, 1)[0].lower()] = line
    return found


def run(cmd: list, cwd: str, home: str) -> subprocess.CompletedProcess:
    # Nothing of the test run's collection paths: a collection found on sys.path (PYTHONPATH) would make
    # ansible-galaxy report the collection as installed already and install nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update({"HOME": home, "PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"})
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> dict:
    """``ansible-builder create`` on a copy of the definition, as the documented steps run it."""
    assert os.path.exists(BUILDER), "ansible-builder is not installed: run make venv (it is in requirements-dev.txt)"
    root = str(tmp_path_factory.mktemp("ee"))
    home = os.path.join(root, "home")
    os.makedirs(home)
    work = os.path.join(root, "src")
    os.makedirs(work)
    for name in ("execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(REPO_ROOT, name), os.path.join(work, name))
    proc = run([os.path.join(BIN_DIR, "ansible-galaxy"), "collection", "build", REPO_ROOT, "--output-path",
                os.path.join(work, ".build", "ee")], work, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ctx = os.path.join(root, "context")
    proc = run([BUILDER, "create", "-f", "execution-environment.yml", "-c", ctx, "--output-filename", "Containerfile"], work, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(REPO_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    with open(os.path.join(REPO_ROOT, "execution-environment.yml"), encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    return {"context": ctx, "root": root, "home": home, "galaxy": galaxy, "definition": definition,
            "tarball": "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])}


def test_definition_uses_schema_3_and_the_project_files(context):
    definition = context["definition"]
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["python"] == "requirements.txt" and deps["system"] == "bindep.txt"
    # ansible-core and ansible-runner in the image are the versions the test suite runs.
    dev = pins(os.path.join(REPO_ROOT, "requirements-dev.txt"))
    assert deps["ansible_core"]["package_pip"] == dev["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == dev["ansible-runner"]


def test_containerfile(context):
    containerfile = read(os.path.join(context["context"], "Containerfile"))
    base = context["definition"]["images"]["base_image"]["name"]
    assert 'ARG EE_BASE_IMAGE="%s"' % base in containerfile
    deps = context["definition"]["dependencies"]
    assert 'ARG ANSIBLE_INSTALL_REFS="%s %s"' % (deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]) in containerfile
    assert 'ARG PYCMD="%s"' % deps["python_interpreter"]["python_path"] in containerfile
    # The galaxy stage installs the collection; the builder stage resolves Python and system packages
    # from the definition's files and the installed collection's own requirements.
    assert "FROM base AS galaxy" in containerfile and "COPY _build /build" in containerfile
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", containerfile, re.M)
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in containerfile
    assert "LABEL ansible-execution-environment=true" in containerfile
    # the collection's Python compiled in the final image, by the jobs' Python, before the image
    # switches to the user that runs jobs (who could not write the cache)
    final = containerfile[containerfile.index("FROM base AS final"):]
    compile_step = "RUN $PYCMD -m compileall -q /usr/share/ansible/collections/ansible_collections/apikeys/rotation"
    assert compile_step in final, final
    assert final.index("COPY --from=galaxy /usr/share/ansible") < final.index(compile_step) < final.index("USER 1000")


def test_build_context_files(context):
    build = os.path.join(context["context"], "_build")
    assert read(os.path.join(build, "requirements.txt")) == read(os.path.join(REPO_ROOT, "requirements.txt"))
    assert read(os.path.join(build, "bindep.txt")) == read(os.path.join(REPO_ROOT, "bindep.txt"))
    galaxy_requirements = yaml.safe_load(read(os.path.join(build, "requirements.yml")))
    # The tarball named in the definition is the one ansible-galaxy builds from galaxy.yml's version.
    assert galaxy_requirements["collections"] == [{"name": "/build/collections/" + context["tarball"], "type": "file"}]
    assert os.path.isfile(os.path.join(build, "collections", context["tarball"]))
    assert os.listdir(os.path.join(build, "collections")) == [context["tarball"]]
    for script in ("assemble", "introspect.py", "install-from-bindep", "entrypoint"):
        assert os.path.isfile(os.path.join(build, "scripts", script)), script


def test_collection_declares_its_own_dependencies(context):
    """ansible-builder's introspection finds the runtime requirements in the installed collection itself."""
    installed = os.path.join(context["root"], "installed")
    tarball = os.path.join(context["context"], "_build", "collections", context["tarball"])
    proc = run([os.path.join(BIN_DIR, "ansible-galaxy"), "collection", "install", tarball, "-p", installed], context["root"],
               context["home"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.isfile(os.path.join(installed, "ansible_collections", "apikeys", "rotation", "MANIFEST.json")), proc.stdout
    proc = run([BUILDER, "introspect", installed], context["root"], context["home"])
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(proc.stdout.split("---", 1)[1])
    python = sorted(line.split("#", 1)[0].strip() for line in data["python"] if "apikeys.rotation" in line)
    assert python == sorted(pins(os.path.join(REPO_ROOT, "requirements.txt")).values()), proc.stdout + proc.stderr
    system = [line.split("#", 1)[0].strip() for line in data["system"] if "apikeys.rotation" in line]
    assert system and system == [line.strip() for line in read(os.path.join(REPO_ROOT, "bindep.txt")).splitlines()
                                 if line.strip() and not line.startswith("#")]
