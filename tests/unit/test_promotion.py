"""The stage graph's pure parts: dockyard.yml's `promotion:` read and checked, and the gates that
decide when a candidate enters and who may approve it."""

from __future__ import annotations

import datetime

import pytest

from dockyard.domain import dockyard_file
from dockyard.domain.errors import InvalidSource
from dockyard.domain.promotion import Approval, Gate, may_approve, verdict

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)
GATE = Gate("recette", datetime.timedelta(minutes=10), 1, ("ann", "bob"))


def test_dockyard_yml_declares_a_stage_with_its_gates() -> None:
    found = dockyard_file.load("environments:\n  recette: {branch: master}\n  production:\n    promotion:\n"
                               "      from: recette\n      soak: 30m\n      approvals: 2\n"
                               "      approvers: [ann, bob]\n      self_approval: true\n")
    production = found.environment("production")
    assert production is not None and production.promotion is not None and production.branch is None
    p = production.promotion
    assert (p.source, p.soak, p.approvals, p.approvers, p.self_approval) == (
        "recette", datetime.timedelta(minutes=30), 2, ("ann", "bob"), True)
    assert found.environment("recette").promotion is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "words"), [
    ("environments:\n  production: {promotion: {from: staging}}\n",
     "line 2: environments/production/promotion/from: unknown environment 'staging'"),
    ("environments:\n  production: {promotion: {from: production}}\n", "the stages form a cycle: production <- production"),
    ("environments:\n  a: {promotion: {from: c}}\n  b: {promotion: {from: a}}\n  c: {promotion: {from: b}}\n",
     "the stages form a cycle"),
    ("environments:\n  r: {branch: main}\n  production: {branch: main, promotion: {from: r}}\n",
     "production is promoted from r: no branch deploys it"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, soak: 8d}}\n", "is not a duration up to 7 days"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, approvals: 3, approvers: [ann]}}\n",
     "3 approvals needed, but only 1 approvers listed"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, approvers: [ann, ann]}}\n", "listed twice"),
    ("environments:\n  r: {}\n  production: {promotion: {soak: 1m}}\n", "from"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, approvals: 11}}\n", "approvals"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, smoke: health}}\n",
     "promotion/smoke: 'health' is not a URL path"),
    ("environments:\n  r: {}\n  production: {promotion: {from: r, smoke: '/a b'}}\n", "is not a URL path"),
])
def test_a_stage_graph_that_cannot_run_is_refused_with_its_line(text: str, words: str) -> None:
    with pytest.raises(InvalidSource) as caught:
        dockyard_file.load(text)
    assert words in str(caught.value)


def test_a_candidate_waits_for_its_soak_and_its_approvals() -> None:
    live = NOW - datetime.timedelta(minutes=4)
    v = verdict(GATE, False, live, True, [], NOW)
    assert not v.ready and v.waiting_for == "6m00s more in recette; approval by ann, bob (0 of 1)"
    approved = [Approval("ann", True)]
    assert verdict(GATE, False, live, True, approved, NOW).waiting_for == "6m00s more in recette"
    assert verdict(GATE, False, NOW - datetime.timedelta(minutes=10), True, approved, NOW).ready
    assert not verdict(GATE, False, NOW - datetime.timedelta(hours=1), False, approved, NOW).ready  # no longer runs


def test_a_protected_environment_needs_an_approval_whatever_the_file_says() -> None:
    open_gate = Gate("recette")
    assert verdict(open_gate, False, NOW, True, [], NOW).ready
    protected = verdict(open_gate, True, NOW, True, [], NOW)
    assert not protected.ready and protected.waiting_for == "approval by an approver or admin (0 of 1)"
    assert verdict(open_gate, True, NOW, True, [Approval("root", True)], NOW).ready
    assert not verdict(open_gate, True, NOW, True, [Approval("root", False)], NOW).ready  # a rejection counts not


def test_who_may_approve() -> None:
    assert may_approve(GATE, "approver", "ann", "dev", []) == ""
    assert may_approve(GATE, "admin", "bob", "dev", []) == ""
    assert "role developer" in may_approve(GATE, "developer", "ann", "dev", [])
    assert "not among the approvers" in may_approve(GATE, "approver", "carl", "dev", [])
    assert "pushed this release" in may_approve(GATE, "approver", "ann", "ann", [])
    assert may_approve(Gate("recette", approvers=("ann",), self_approval=True), "approver", "ann", "ann", []) == ""
    assert "decided on this release already" in may_approve(GATE, "approver", "ann", "dev", [Approval("ann", True)])
    assert may_approve(Gate("recette"), "approver", "anyone", "dev", []) == ""  # none listed: any approver
    # a protected environment: nobody approves their own push, whatever the file says
    lenient = Gate("recette", approvers=("ann",), self_approval=True)
    assert "the environment is protected" in may_approve(lenient, "approver", "ann", "ann", [], protected=True)
    assert may_approve(lenient, "approver", "ann", "dev", [], protected=True) == ""


def test_an_environment_stays_promoted_while_its_live_release_says_so() -> None:
    from dockyard.domain.model import App, ReleaseStatus
    from dockyard.fakes import FakeRepos, FakeStore
    from dockyard.services.stages import promoted_from

    store, repos = FakeStore(), FakeRepos()
    store.create_app(App("shop"))
    repos.create("shop")
    staged = repos.commit("shop", {"dockyard.yml": "environments:\n  recette: {branch: main}\n"
                                                   "  production: {promotion: {from: recette}}\n"})
    plain = repos.commit("shop", {"dockyard.yml": "environments:\n  recette: {branch: main}\n"})
    none = repos.commit("shop", {"Dockerfile": "FROM scratch\n"})
    assert promoted_from(store, repos, "shop", "production", staged) == "recette"
    assert promoted_from(store, repos, "shop", "production", plain) is None  # nothing live yet
    assert promoted_from(store, repos, "shop", "recette", staged) is None
    live = store.create_release("shop", "production", staged, None)
    store.set_release(live, ReleaseStatus.LIVE)
    assert promoted_from(store, repos, "shop", "production", plain) == "recette"  # the live release's file
    assert promoted_from(store, repos, "shop", "production", none) == "recette"


def test_a_smoke_check_upstream_holds_the_candidate_until_it_passes() -> None:
    found = dockyard_file.load("environments:\n  r: {}\n  production: {promotion: {from: r, smoke: /health?deep=1}}\n")
    assert found.environment("production").promotion.smoke == "/health?deep=1"  # type: ignore[union-attr]
    gate = Gate("recette", smoke="/health")
    live = NOW - datetime.timedelta(minutes=1)
    assert verdict(gate, False, live, True, [], NOW).waiting_for == "a smoke check of /health in recette (not run yet)"
    failed = verdict(gate, False, live, True, [], NOW, "last: HTTP 503")
    assert not failed.ready and failed.waiting_for == "a smoke check of /health in recette (last: HTTP 503)"
    assert verdict(gate, False, live, True, [], NOW, "").ready
    assert verdict(Gate("recette"), False, live, True, [], NOW, None).ready  # no smoke check asked
