# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the playbooks show a person: the fleet's status and the closing table of a run.

:func:`status_row` turns what the ``status`` entry point read for one key (its secret and
rotation record in Vault, the staged Anthropic key, one probe) into a row: age, when it is
next due, an unfinished stage, the previous key and its grace period, the last failure,
whether the key in Vault is live, and the next action. :func:`status_lines` prints the rows
as a table, :func:`status_report` writes them as Markdown or as an HTML page (Jinja2 with
autoescaping, the template engine Ansible itself runs on). :func:`closing_lines` is the
one-row-per-key table the rotate, rollback, cleanup and probe playbooks end with.

Only fingerprints, ids and times pass through here: never a key value.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils import rotation
from ansible_collections.apikeys.rotation.plugins.module_utils.rotation import key_age_since, parse_time

# what resume_from answers, as the stage the next run starts at
RESUME_AT = {"create": "create", "recover": "store", "deploy": "verify", "retire": "retire"}
# how a row's state reads, from best to worst
STATES = ("ok", "pending", "waiting", "due", "failed")


def short_id(key_id: t.Any) -> str:
    """A key id as a table shows it: OpenRouter's 64-hex hashes cut to their first 16 characters."""
    text = str(key_id or "")
    return text if len(text) <= 24 else text[:16] + "..."


def time_text(seconds: t.Optional[float]) -> str:
    """A UTC time to the minute, ``2026-12-08 14:05``; "" for None."""
    if seconds is None:
        return ""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def console_key_wait(age_seconds: float, max_age_seconds: float, wait_seconds: float, now: float) -> t.Dict[str, t.Any]:
    """A due Anthropic key with no new Console key: whether it still waits, when it fell due, when waiting ends.

    It waits until ``console_key_wait`` past ``max_age``; the rotate role and the status view ask here.
    """
    due = now - float(age_seconds) + float(max_age_seconds)
    until = due + float(wait_seconds)
    return {"waiting": now < until, "due_at": time_text(due), "fails_from": time_text(until)}


def _live(probe: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[t.Optional[bool], str]:
    """Whether the probe says live (None: not probed), and its reason when not."""
    if not probe or probe.get("skipped"):
        return None, ""
    if probe.get("live"):
        return True, "restricted (may not list models)" if probe.get("restricted") else ""
    return False, str(probe.get("reason") or probe.get("msg") or "no answer")


def status_row(host: str, facts: t.Mapping[str, t.Any], now: float) -> t.Dict[str, t.Any]:
    """One key's status, from what the status tasks read.

    ``facts``: ``provider``, ``vault`` (mount/path), ``secret`` (vault_secret_info's result),
    ``lease`` (the lease's data, or empty),
    ``staged`` (the staged Console key's vault_secret_info result, or None), ``probe``
    (api_key_probe's result, or None when not probed), ``max_age`` / ``max_age_seconds``,
    ``grace_period`` / ``grace_seconds``, ``wait_limit`` / ``wait_limit_seconds`` (how long a
    due Anthropic key may wait for its Console key) and ``staging_path``.
    """
    secret = facts.get("secret") or {}
    provider = str(facts.get("provider") or "")
    row: t.Dict[str, t.Any] = {
        "key": host, "provider": provider, "vault": str(facts.get("vault") or ""),
        "vault_version": 0, "fingerprint": "", "key_id": "", "age": "", "age_seconds": None, "rotated_at": "",
        "due_at": "", "due_in": "", "due_in_seconds": None, "stage": "", "rotation_id": "",
        "previous_key_id": "", "previous_state": "", "grace_ends_at": "", "grace_ends_seconds": None, "stale_key_ids": [],
        "live": None, "live_note": "", "last_failure": "", "next_action": "", "state": "ok",
    }
    vault_problem = str(secret.get("msg") or "") if secret.get("failed") else ""
    if vault_problem or not secret.get("exists") or not (secret.get("fingerprints") or {}).get("api_key"):
        row["last_failure"] = vault_problem or ("the secret does not exist" if not secret.get("exists")
                                                else "the secret has no api_key field")
        row["next_action"] = "fix: " + row["last_failure"]
        row["state"] = "failed"
        return row
    record = secret.get("custom_metadata") or {}
    fingerprint = str(secret["fingerprints"]["api_key"])
    row.update(vault_version=int(secret.get("current_version") or 0), fingerprint=fingerprint,
               key_id=str(record.get("key_id") or "") if str(record.get("fingerprint") or fingerprint) == fingerprint else "",
               rotation_id=str(record.get("rotation_id") or ""), stage=str(record.get("stage") or ""),
               rotated_at=time_text(parse_time(record.get("rotated_at"))))

    since = key_age_since(secret)
    max_age = float(facts.get("max_age_seconds") or 0)
    if since is not None:
        age = max(0.0, now - since)
        row.update(age_seconds=int(age), age=rotation.age_text(age), due_at=time_text(since + max_age),
                   due_in_seconds=int(since + max_age - now))
        row["due_in"] = ("due in " + rotation.age_text(since + max_age - now)) if since + max_age > now \
            else ("overdue by " + rotation.age_text(now - since - max_age))

    previous = str(record.get("previous_key_id") or "")
    if previous and previous != row["key_id"]:
        row.update(previous_key_id=previous, previous_state=str(record.get("previous_state") or ""))
        retired = parse_time(record.get("retired_at"))
        if row["previous_state"] in ("active", "disabled") and retired is not None:
            row["grace_ends_seconds"] = int(retired + float(facts.get("grace_seconds") or 0))
            row["grace_ends_at"] = time_text(row["grace_ends_seconds"])
    row["stale_key_ids"] = [k.strip() for k in str(record.get("stale_key_ids") or "").split(",") if k.strip()]

    live, note = _live(facts.get("probe"))
    row.update(live=live, live_note=note)
    # What failed: a key that does not authenticate now, a rotation that stopped before its end
    # (a run that failed or died), and the record's last_failure (a verify that failed and put
    # the previous key back, or a rotation overtaken by another writer; cleared at the next store).
    failures = []
    if live is False:
        failures.append("now: the key in Vault is not live at %s: %s" % (provider, note))
    if row["stage"]:
        started = time_text(parse_time(record.get("rotation_started_at")))
        when = " (started %s)" % started if started else ""
        failures.append("rotation %s%s stopped at stage %s" % (row["rotation_id"], when, row["stage"]))
    if record.get("last_failure"):
        # what restore.yml / superseded.yml recorded: "<time> rotation <id>: <why>"
        failures.append(str(record["last_failure"]))
    row["last_failure"] = "; ".join(failures)
    row["next_action"], row["state"] = next_action(row, record, facts, now)
    return row


def next_action(row: t.Mapping[str, t.Any], record: t.Mapping[str, t.Any], facts: t.Mapping[str, t.Any],
                now: float) -> t.Tuple[str, str]:
    """What the key needs next, in words, and the row's state (one of STATES)."""
    lease = facts.get("lease") or {}
    if lease.get("state") == "held":
        decision = rotation.lease_decision(lease, now).outcome
        holder = "run %s%s%s" % (lease.get("owner") or "?", " on %s" % lease["controller"] if lease.get("controller") else "",
                                 " (AWX job %s)" % lease["job"] if lease.get("job") else "")
        if decision == "held":
            return "in progress: %s holds the lease until %s; wait for it" % (holder, lease.get("expires_at") or "?"), "pending"
        if decision == "dead_holder" and not row["stage"]:
            # a run with nothing to do releases it; an expired lease blocks nobody (the next run takes it over)
            return "run rotate: it releases the lease of %s, which died" % holder, "pending"
    if row["stage"]:
        resume = rotation.resume_from(True, row["stage"], row["fingerprint"], record)
        if resume in RESUME_AT:
            return "resume at %s (stage %s): run rotate" % (RESUME_AT[resume], row["stage"]), "pending"
        if resume in ("conflict", "superseded"):
            return "another writer changed the key during rotation %s: run rotate to close it" % row["rotation_id"], "failed"
        return "unknown stage %s: see docs/rotation.md" % row["stage"], "failed"
    if row["live"] is False:
        return "the key in Vault is not live: run probe, then rollback or rotate", "failed"
    if row["due_in_seconds"] is not None and row["due_in_seconds"] <= 0:
        if row["provider"] == "anthropic" and not _new_console_key(facts, row["fingerprint"]):
            wait = console_key_wait(row["age_seconds"], float(facts.get("max_age_seconds") or 0),
                                    float(facts.get("wait_limit_seconds") or 0), now)
            where = facts.get("staging_path") or "new_api_key_vault_path"
            if not wait["waiting"]:
                return ("waiting for a new Console key at %s since %s, past its limit %s: rotate fails until one is staged"
                        % (where, wait["due_at"], facts.get("wait_limit") or "")), "failed"
            return ("waiting for a new Console key at %s (rotate fails after %s)" % (where, wait["fails_from"])), "waiting"
        return "rotate: due since %s" % row["due_at"], "due"
    if row["previous_key_id"] and row["previous_state"] in ("active", "disabled"):
        ends = row["grace_ends_seconds"]
        if ends is not None and ends <= now:
            return "run cleanup: previous key %s deletable since %s" % (short_id(row["previous_key_id"]), row["grace_ends_at"]), \
                "pending"
        if ends is not None:
            return "previous key %s deletable after %s" % (short_id(row["previous_key_id"]), row["grace_ends_at"]), "ok"
    if row["stale_key_ids"]:
        return "run cleanup: %d stale key(s) to delete" % len(row["stale_key_ids"]), "pending"
    return row["due_in"] or "nothing to do", "ok"


def _new_console_key(facts: t.Mapping[str, t.Any], current: str) -> bool:
    staged = facts.get("staged") or {}
    fingerprint = str((staged.get("fingerprints") or {}).get("api_key") or "")
    return bool(fingerprint) and fingerprint != current


# -- tables ---------------------------------------------------------------------------------

STATUS_COLUMNS = (("key", "KEY"), ("provider", "PROVIDER"), ("age", "AGE"), ("due_at", "NEXT DUE"),
                  ("stage", "STAGE"), ("previous", "PREVIOUS KEY"), ("live_text", "LIVE"), ("next_action", "NEXT ACTION"))
STATUS_KEYS = tuple(k for k, h in STATUS_COLUMNS)
STATUS_HEADERS = tuple(h for k, h in STATUS_COLUMNS)


def _cells(row: t.Mapping[str, t.Any]) -> t.Dict[str, str]:
    cells = {k: str(row.get(k) or "") for k in STATUS_KEYS}
    cells["stage"] = row.get("stage") or "-"
    previous = ""
    if row.get("previous_key_id"):
        previous = "%s %s" % (short_id(row["previous_key_id"]), row.get("previous_state") or "")
        if row.get("grace_ends_at") and row.get("previous_state") in ("active", "disabled"):
            previous += " until " + row["grace_ends_at"]
    cells["previous"] = previous.strip() or "-"
    live = row.get("live")
    cells["live_text"] = "unknown" if live is None else ("yes" if live else "NO")
    if live and row.get("live_note"):
        cells["live_text"] += " (%s)" % row["live_note"]
    return cells


def text_table(headers: t.Sequence[str], rows: t.Sequence[t.Sequence[str]]) -> t.List[str]:
    """Rows as aligned columns, a header line first."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [list(headers)] + [list(r) for r in rows]]


def status_lines(rows: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    """The fleet as a table, one line per key, then each key's last failure."""
    cells = [_cells(r) for r in rows]
    lines = text_table(STATUS_HEADERS, [[c[k] for k in STATUS_KEYS] for c in cells])
    counts = {s: sum(1 for r in rows if r.get("state") == s) for s in STATES}
    lines.append("%d key(s): " % len(rows) + ", ".join("%d %s" % (n, s) for s, n in counts.items() if n))
    lines.extend("%s last failure: %s" % (r["key"], r["last_failure"]) for r in rows if r.get("last_failure"))
    return lines


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def status_markdown(rows: t.Sequence[t.Mapping[str, t.Any]], generated_at: str) -> str:
    headers = [h.title() for h in STATUS_HEADERS] + ["Last failure"]
    out = ["# API key status", "", "Generated %s UTC, %d key(s)." % (generated_at, len(rows)), "",
           "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = _cells(row)
        out.append("| " + " | ".join(_md(cells[k]) or " " for k in STATUS_KEYS)
                   + " | " + (_md(row.get("last_failure") or "") or " ") + " |")
    return "\n".join(out) + "\n"


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>API key status</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.ok td.state { background: #d9f2d9; }
tr.pending td.state, tr.waiting td.state, tr.due td.state { background: #fff0c2; }
tr.failed td.state { background: #f8d0d0; }
td.fp { font-family: monospace; }
td.nw { white-space: nowrap; }
</style>
</head>
<body>
<h1>API key status</h1>
<p>Generated {{ generated_at }} UTC, {{ rows | length }} key(s){% for state, n in counts %}, {{ n }} {{ state }}{% endfor %}.</p>
<table id="status">
<thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr class="{{ row.state }}" data-key="{{ row.key }}">
<td class="nw">{{ row.key }}</td><td>{{ row.provider }}</td><td>{{ row.vault }} v{{ row.vault_version }}</td>
<td class="fp">{{ row.fingerprint }}</td><td class="nw">{{ row.age }}</td><td class="nw">{{ row.due_at }}</td><td>{{ row.cells.stage }}</td>
<td>{{ row.cells.previous }}</td><td>{{ row.cells.live_text }}</td><td class="state">{{ row.state }}</td>
<td>{{ row.next_action }}</td><td>{{ row.last_failure }}</td>
</tr>
{% endfor %}</tbody>
</table>
</body>
</html>
"""
HTML_HEADERS = ("Key", "Provider", "Vault", "Fingerprint", "Age", "Next due", "Stage", "Previous key", "Live",
                "State", "Next action", "Last failure")


def status_html(rows: t.Sequence[t.Mapping[str, t.Any]], generated_at: str) -> str:
    """The fleet as an HTML page, every value escaped by Jinja2's autoescaping."""
    import jinja2  # pylint: disable=import-outside-toplevel  # only a report needs it

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    shown = [dict(r, cells=_cells(r)) for r in rows]
    counts = [(s, n) for s, n in ((s, sum(1 for r in rows if r.get("state") == s)) for s in STATES) if n]
    return env.from_string(HTML_TEMPLATE).render(rows=shown, headers=HTML_HEADERS, counts=counts, generated_at=generated_at)


def status_report(rows: t.Sequence[t.Mapping[str, t.Any]], path: str, generated_at: str) -> str:
    """The report for ``path``: HTML for ``.html`` / ``.htm``, Markdown otherwise."""
    if str(path).lower().endswith((".html", ".htm")):
        return status_html(rows, generated_at)
    return status_markdown(rows, generated_at)


# -- the closing table of a run -------------------------------------------------------------

def _key_now(entry: t.Mapping[str, t.Any]) -> str:
    parts = [short_id(entry.get("key_id")) or "id unknown", str(entry.get("fingerprint") or "")]
    if entry.get("vault_version"):
        parts.append("v%s" % entry["vault_version"])
    return " ".join(p for p in parts if p)


def _rotate_cells(entry: t.Mapping[str, t.Any]) -> t.Tuple[str, str, str]:
    result = str(entry.get("result") or "")
    done = {"rotated": "rotated", "resumed": "finished a rotation left unfinished", "up_to_date": "nothing (up to date)",
            "already_rotated": "nothing (another run rotated it)", "would_rotate": "would rotate (check mode)",
            "would_resume": "would finish the unfinished rotation (check mode)",
            "waiting": "nothing (waiting for a new Console key)"}.get(result, result)
    left = "-"
    state = str(entry.get("previous_state") or "")
    if result in ("rotated", "resumed") and entry.get("previous_key_id"):
        left = "previous key %s %s: cleanup deletes it after the grace period" % (short_id(entry["previous_key_id"]), state) \
            if state in ("active", "disabled") else "-"
    elif result == "waiting":
        left = str(entry.get("waiting") or "stage a new Console key")
    elif result.startswith("would"):
        left = "run without --check to do it"
    return done, _key_now(entry), left


def _rollback_cells(entry: t.Mapping[str, t.Any]) -> t.Tuple[str, str, str]:
    result = str(entry.get("result") or "")
    done = {"rolled_back": "rolled back from %s" % (entry.get("previous_fingerprint") or "?"),
            "already_rolled_back": "nothing (already rolled back)",
            "would_roll_back": "would roll back (check mode)"}.get(result, result)
    if entry.get("re_enabled"):
        done += ", re-enabled the key"
    left = "rotate again once the cause is fixed" if result != "would_roll_back" else "run without --check to do it"
    return done, _key_now(entry), left


def _cleanup_cells(entry: t.Mapping[str, t.Any]) -> t.Tuple[str, str, str]:
    result = str(entry.get("result") or "")
    if result == "deleted":
        done = "deleted " + ", ".join(entry.get("deleted_key_ids") or [])
    elif result == "would_delete":
        done = "would delete %s (check mode)" % ", ".join(entry.get("would_delete_key_ids") or [])
    else:
        done = "nothing deleted"
    kept = list(entry.get("kept_active_key_ids") or [])
    left = ("kept active (the provider refused): " + ", ".join(kept)) if kept else str(entry.get("kept") or "-")
    return done, _key_now(entry), left


def _probe_cells(entry: t.Mapping[str, t.Any]) -> t.Tuple[str, str, str]:
    if entry.get("live"):
        done = "live" + (", application serves it" if entry.get("application_fingerprint") else "")
    else:
        done = "NOT LIVE: " + str(entry.get("reason") or "")
    stage = str(entry.get("unfinished_stage") or "")
    left = ("rotation unfinished at stage %s: run rotate" % stage) if stage else "-"
    return done, _key_now(entry), left


CLOSING = {"rotate": _rotate_cells, "rollback": _rollback_cells, "cleanup": _cleanup_cells, "probe": _probe_cells}


def closing_lines(kind: str, entries: t.Mapping[str, t.Optional[t.Mapping[str, t.Any]]]) -> t.List[str]:
    """One line per key: what this run did, the key Vault serves, what is left to do.

    ``entries`` maps each key of the play to its workflow entry (what set_stats hands AWX), or
    None for a key whose run failed before its end.
    """
    cells = CLOSING[kind]
    rows = []
    for host, entry in entries.items():
        if entry is None:
            rows.append([host, "", "FAILED: see its error above", "", "fix the cause, then run %s again" % kind])
            continue
        done, key, left = cells(entry)
        rows.append([host, str(entry.get("provider") or ""), done, key, left])
    failed = sum(1 for e in entries.values() if e is None)
    lines = text_table(["KEY", "PROVIDER", "DONE", "KEY IN VAULT", "LEFT TO DO"], rows)
    lines.append("%s: %d key(s)%s" % (kind, len(rows), ", %d FAILED" % failed if failed else ", none failed"))
    return lines
