# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's filters where they do more than hand on to module_utils: the report read from a key's
host variables."""

from __future__ import annotations

from ansible_collections.apikeys.rotation.plugins.filter import rotation as filters
from ansible_collections.apikeys.rotation.plugins.module_utils import summary
from ansible_collections.apikeys.rotation.tests.unit.plugins.module_utils.test_summary import facts as run_facts

# the values summary.yml hands the filter from the role, not from the host
ROLE_VALUES = ("key", "check_mode", "previous_state", "run_timing", "health_url", "verify_successes", "retire_state")


def as_host_vars(facts):
    """The host variables such a run leaves: rotate_* facts and registered results, the lease's fields in its result."""
    lease = dict(facts["lease"], outcome=facts["lease_outcome"], secret=facts["lease_secret"], owner=facts["lease_owner"],
                 taken_over_from=facts["lease_taken_over"], decision=facts["lease_decision"])
    host = {"rotate_" + name: value for name, value in facts.items()
            if name not in ROLE_VALUES and name not in filters.LEASE_FIELDS}
    host["rotate_lease"] = lease
    host["provider"] = "not a rotate_ variable"
    return host


def test_every_fact_of_the_report_has_one_source():
    facts = run_facts()
    sources = set(filters.HOST_FACTS) | set(filters.LEASE_FIELDS) | set(ROLE_VALUES)
    assert sources == set(facts), sorted(sources ^ set(facts))


def test_the_report_from_host_variables_is_the_report_from_the_facts():
    facts = run_facts()
    role_values = {name: facts[name] for name in ROLE_VALUES}
    read = filters.report_facts(as_host_vars(facts), role_values)
    assert read["lease"] == dict(facts["lease"], outcome="taken", secret=facts["lease_secret"], owner="run-1",
                                 taken_over_from="", decision={"outcome": "free"})
    read["lease"] = facts["lease"]
    assert read == facts
    assert filters.rotation_report(as_host_vars(facts), role_values) == summary.report(facts)


def test_facts_a_run_never_set_are_null():
    # a run that stopped after its plan: no lease taken (the skipped task's result), nothing created
    host = {"rotate_resume_from": "create", "rotate_lease": {"skipped": True, "changed": False}}
    read = filters.report_facts(host, {"key": "k", "check_mode": False})
    assert read["resume_from"] == "create" and read["key"] == "k"
    assert read["lease_outcome"] is None and read["lease_owner"] is None and read["new_key_id"] is None
    assert filters.report_facts({}, {})["lease_outcome"] is None
