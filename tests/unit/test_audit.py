"""The audit log's hash chain (domain/audit.py): hashes over canonical JSON, and the first broken
entry named, whatever was changed, removed or moved."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.domain.audit import GENESIS, AuditEntry, canonical_detail, entry_hash, first_broken, hash_of

FAST = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def chain(n: int, start: int = 1, step: int = 1) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for i in range(n):
        detail = canonical_detail({"job": i, "names": ["A", "B"][: i % 3]})
        fields = (f"2024-05-01T10:00:{i % 60:02d}.000000+00:00", f"user{i % 3}", "10.0.0.7", "variable.set",
                  "shop" if i % 2 else None, "production" if i % 2 else None)
        digest = entry_hash(prev, *fields, detail)
        entries.append(AuditEntry(start + i * step, *fields, detail, prev, digest))
        prev = digest
    return entries


# -- hashes -----------------------------------------------------------------------------------------
def test_the_hash_is_sha256_of_sorted_compact_json() -> None:
    digest = entry_hash(GENESIS, "2024-05-01T10:00:00.000000+00:00", "ana", "10.0.0.7", "token.created", None,
                        None, {"token": "ci", "role": "admin"})
    text = ('{"action":"token.created","actor":"ana","app":null,"at":"2024-05-01T10:00:00.000000+00:00",'
            '"detail":{"role":"admin","token":"ci"},"environment":null,"prev_hash":"' + GENESIS + '",'
            '"source":"10.0.0.7"}')
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert len(digest) == 64


def test_every_field_and_the_link_change_the_hash() -> None:
    base: dict[str, Any] = {"prev_hash": GENESIS, "at": "t", "actor": "a", "source": "s", "action": "x", "app": "shop",
                            "environment": "production", "detail": {"k": 1}}
    seen = {entry_hash(**base)}
    for key, other in [("prev_hash", "1" * 64), ("at", "u"), ("actor", "b"), ("source", "git push"), ("action", "y"),
                       ("app", None), ("environment", "staging"), ("detail", {"k": 2})]:
        seen.add(entry_hash(**{**base, key: other}))
    assert len(seen) == 9


def test_detail_is_hashed_as_it_reads_back() -> None:
    detail = canonical_detail({"names": ("B", "A"), "n": 3, "when": object})
    assert detail["names"] == ["B", "A"] and isinstance(detail["when"], str)
    assert json.loads(json.dumps(detail)) == detail
    assert entry_hash(GENESIS, "t", "a", "s", "x", None, None, {"b": 1, "a": 2}) == \
        entry_hash(GENESIS, "t", "a", "s", "x", None, None, {"a": 2, "b": 1})


# -- the chain --------------------------------------------------------------------------------------
def test_an_empty_log_and_a_whole_chain_hold() -> None:
    assert first_broken([]) is None
    entries = chain(5)
    assert first_broken(entries) is None
    assert all(hash_of(e) == e.hash for e in entries)
    assert first_broken(chain(4, start=10, step=7)) is None  # ids may skip (a rolled-back insert)


def test_a_changed_entry_is_named() -> None:
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], actor="mallory")
    assert first_broken(entries) == (3, "its fields do not match its hash: the entry was changed")


def test_a_changed_entry_with_its_hash_recomputed_breaks_the_next_link() -> None:
    entries = chain(5)
    forged = dataclasses.replace(entries[2], actor="mallory")
    entries[2] = dataclasses.replace(forged, hash=hash_of(forged))
    broken = first_broken(entries)
    assert broken is not None and broken[0] == 4 and "entry 3" in broken[1]


def test_a_removed_entry_is_named_by_the_one_after_it() -> None:
    entries = chain(5)
    del entries[2]
    broken = first_broken(entries)
    assert broken is not None and broken[0] == 4
    assert broken[1].startswith("its link does not match the hash of entry 2")


def test_removing_the_first_entries_is_seen() -> None:
    assert first_broken(chain(5)[2:]) == (3, "the first entry does not start the chain: entries before it were "
                                             "removed")


def test_entries_out_of_order_are_named() -> None:
    entries = chain(4)
    entries[2] = dataclasses.replace(entries[2], id=1)
    assert first_broken(entries) == (1, "its id comes after entry 2's: entries were moved")


# -- any single change is found where it was made -----------------------------------------------------
EDITABLE = ["at", "actor", "source", "action", "app", "environment", "detail", "prev_hash", "hash"]
VALUES = st.one_of(st.text(max_size=20), st.none(), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@FAST
@given(n=st.integers(1, 12), data=st.data())
def test_any_single_field_edit_is_named(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    i = data.draw(st.integers(0, n - 1), "entry")
    key = data.draw(st.sampled_from(EDITABLE), "field")
    value = data.draw(VALUES, "value")
    if key == "detail" and not isinstance(value, dict):
        value = {"value": value}
    if getattr(entries[i], key) == value:
        return
    entries[i] = dataclasses.replace(entries[i], **{key: value})
    broken = first_broken(entries)
    assert broken is not None and broken[0] == entries[i].id


@FAST
@given(n=st.integers(2, 12), data=st.data())
def test_any_removal_but_the_newest_is_named_by_the_entry_after_it(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    i = data.draw(st.integers(0, n - 2), "removed")
    after = entries[i + 1].id
    del entries[i]
    broken = first_broken(entries)
    assert broken is not None and broken[0] == after


@FAST
@given(n=st.integers(2, 12), data=st.data())
def test_any_reordering_is_named_where_it_starts(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    order = data.draw(st.permutations(range(n)), "order")
    if list(order) == list(range(n)):
        return
    moved = [entries[k] for k in order]
    first = next(pos for pos, k in enumerate(order) if k != pos)
    broken = first_broken(moved)
    assert broken is not None and broken[0] == moved[first].id  # a newer entry brought forward: its link breaks


def test_cutting_off_the_newest_entries_is_not_seen_by_the_chain_alone() -> None:
    entries = chain(5)
    assert first_broken(entries[:3]) is None  # hence the head, to compare with one noted elsewhere
