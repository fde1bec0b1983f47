# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generated module reference (docs/modules/) is current and says what ansible-doc says."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys

import pytest

from harness import BIN_DIR, REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "tools"))
import gen_module_docs as gen  # noqa: E402  pylint: disable=wrong-import-position

DOCS_DIR = os.path.join(REPO_ROOT, "docs", "modules")
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, "plugins", "modules"))
                 if name.endswith(".py") and not name.startswith("_"))


def test_reference_is_current(tmp_path):
    """Regenerate into a temporary directory and compare file by file with docs/modules/."""
    out = str(tmp_path / "modules")
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tests", "tools", "gen_module_docs.py"), "--output", out],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    fresh = sorted(os.listdir(out))
    assert fresh == sorted(["README.md"] + [m + ".md" for m in MODULES])
    committed = sorted(n for n in os.listdir(DOCS_DIR) if n.endswith(".md"))
    stale = [name for name in fresh if name not in committed]
    stale += [name for name in committed if name not in fresh]
    for name in fresh:
        if name in committed:
            with open(os.path.join(out, name), encoding="utf-8") as new, open(os.path.join(DOCS_DIR, name), encoding="utf-8") as old:
                if new.read() != old.read():
                    stale.append(name)
    assert not stale, "docs/modules is stale (%s): run python tests/tools/gen_module_docs.py" % ", ".join(sorted(stale))


def test_check_mode_detects_a_stale_page(tmp_path):
    out = tmp_path / "modules"
    gen.write_pages(gen.generate(REPO_ROOT), str(out))
    assert gen.main(["--check", "--output", str(out)]) == 0
    page = out / "api_key_probe.md"
    page.write_text(page.read_text(encoding="utf-8").replace("Return values", "Returns"), encoding="utf-8")
    (out / "removed_module.md").write_text("left over\n", encoding="utf-8")
    assert gen.stale_pages(gen.generate(REPO_ROOT), str(out)) == ["api_key_probe.md", "removed_module.md"]
    assert gen.main(["--check", "--output", str(out)]) == 1


def _option_summary(options: dict, prefix: str = "") -> dict:
    summary = {}
    for name, spec in (options or {}).items():
        summary[prefix + name] = (spec.get("type", "str"), bool(spec.get("required", False)), spec.get("default"),
                                  tuple(spec.get("choices") or ()))
        summary.update(_option_summary(spec.get("suboptions"), prefix + name + "."))
    return summary


def _return_keys(returns: dict, prefix: str = "") -> set:
    keys = set()
    for name, spec in (returns or {}).items():
        keys.add(prefix + name)
        keys |= _return_keys(spec.get("contains"), prefix + name + ".")
    return keys


def test_fragments_merge_like_ansible_doc(collections_path, tmp_path):
    """The generator's merge of documentation fragments gives what ansible-doc shows, module by module."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, HOME=str(tmp_path), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN_DIR, "ansible-doc"), "-j", "-t", "module"] + ["apikeys.rotation." + m for m in MODULES],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reference = json.loads(proc.stdout)
    for module in MODULES:
        ours = gen.read_module(os.path.join(REPO_ROOT, "plugins", "modules", module + ".py"), REPO_ROOT)
        theirs = reference["apikeys.rotation." + module]
        assert _option_summary(ours["doc"]["options"]) == _option_summary(theirs["doc"]["options"]), module
        assert ({k: v.get("support") for k, v in ours["doc"].get("attributes", {}).items()}
                == {k: v.get("support") for k, v in theirs["doc"].get("attributes", {}).items()}), module
        assert ours["doc"].get("notes", []) == theirs["doc"].get("notes", []), module
        assert sorted(ours["doc"].get("requirements", [])) == sorted(theirs["doc"].get("requirements", [])), module
        assert _return_keys(ours["returns"]) == _return_keys(theirs.get("return")), module
        assert ours["examples"].strip() == (theirs.get("examples") or "").strip(), module


@pytest.mark.parametrize("source, expected", [
    ("O(provider=openai) and RV(live) with V(true)", "`provider=openai` and `live` with `true`"),
    ("E(VAULT_TOKEN_FILE) or C(GET /v1/models?limit=1)", "`VAULT_TOKEN_FILE` or `GET /v1/models?limit=1`"),
    (r"V(a\)b) then I(word) and B(bold)", "`a)b` then *word* and **bold**"),
    ("O(ns.coll.mod#module:opt) and P(ns.coll.plug#lookup)", "`opt` and `ns.coll.plug`"),
    ("see M(apikeys.rotation.vault_secret_info) or M(community.hashi_vault.vault_kv2_write)",
     "see [`apikeys.rotation.vault_secret_info`](vault_secret_info.md) or `community.hashi_vault.vault_kv2_write`"),
    ("L(the docs,https://example.org/x) and U(https://example.org)", "[the docs](https://example.org/x) and <https://example.org>"),
    ("names like <prefix>-<id> and *_key_id", r"names like &lt;prefix&gt;-&lt;id&gt; and \*\_key\_id"),
    ("C(a `tick`)", "`` a `tick` ``"),
    ("BOOLEAN(x) stays, TO(x) too", r"BOOLEAN(x) stays, TO(x) too"),
])
def test_markup(source, expected):
    assert gen.markup(source) == expected


def test_table_cells_escape_pipes():
    rows = gen.option_rows({"x": {"type": "str", "description": ["C(true|false)", "second"], "choices": ["a", "b"], "default": "a"}})
    assert rows == ["| `x` | str | `a` | `true\\|false`<br>second<br>Choices: `a`, `b`. |"]


def test_unclosed_markup_is_an_error():
    with pytest.raises(gen.DocError):
        gen.markup("O(never closed")


def test_rerun_table_matches_the_decision():
    """docs/rotation.md's "What a re-run does at each stage": each row's stage leads to its resume_from in
    plugins/module_utils/rotation.py for some key in Vault (the record's, the pending one, another), and the table
    names every resume point a re-run can reach."""
    from ansible_collections.apikeys.rotation.plugins.module_utils import rotation  # pylint: disable=import-outside-toplevel

    with open(os.path.join(REPO_ROOT, "docs", "rotation.md"), encoding="utf-8") as handle:
        text = handle.read()
    table = text[text.index("| the run died… | the record says | starts at (`resume_from`) |"):]
    rows = [line.strip("|").split(" | ") for line in table.split("\n\n")[0].splitlines()[2:]]
    assert len(rows) >= 8, rows
    record = {"fingerprint": "sha256:000000000001", "pending_fingerprint": "sha256:000000000002", "rotation_id": "r"}
    keys = (record["fingerprint"], record["pending_fingerprint"], "sha256:00000000000f")
    seen = set()
    for row in rows:
        says, starts = row[1], re.fullmatch(r"\s*`([a-z]+)`\s*", row[2]).group(1)
        stages = [""] if says.strip().startswith("no stage") else re.findall(r"`([a-z]+)`", says)
        assert stages, row
        for stage in stages:
            found = {rotation.resume_from(True, stage, key, dict(record, stage=stage)) for key in keys}
            assert starts in found, "%r: stage %r leads to %s, not %s" % (row[0], stage, sorted(found), starts)
        seen.add(starts)
    assert seen == set(rotation.RESUME_POINTS) - {"none"}, seen
