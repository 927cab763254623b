"""The field-by-field merge (core/merge.py), on plain values."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fieldsync.core import merge
from fieldsync.core.clock import HLC
from fieldsync.core.merge import MISSING, Granularity, Head

BASE: dict[str, Any] = {
    "perpetrator": {"parties": ["regime_army", "russian_forces"], "attribution": "joint"},
    "victims": {"total": 2, "individuals": [{"id": "v1", "name": "Sara", "age": 7}]},
    "narrative": "At dawn the hospital was struck.",
}


def head(name: str, time: int, **changes: Any) -> Head:
    answers = dict(BASE.items())
    answers.update(changes)
    return Head(name, "a" * 64 if name < "m" else "b" * 64, HLC(time, 0), answers)


def test_changes_to_different_fields_merge() -> None:
    analyst = head("x", 2, perpetrator={"parties": ["russian_forces"], "attribution": "confirmed"})
    documenter = head("y", 1, victims={**BASE["victims"], "total": 4})
    merged = merge.merge(BASE, [], [analyst, documenter])
    assert merged.clean
    assert merged.answers["perpetrator"]["parties"] == ["russian_forces"]
    assert merged.answers["victims"]["total"] == 4


def test_the_same_change_on_both_sides_merges() -> None:
    same = {"parties": ["russian_forces"], "attribution": "confirmed"}
    assert merge.merge(
        BASE, [], [head("x", 1, perpetrator=same), head("y", 2, perpetrator=same)]
    ).clean


def test_different_changes_to_one_field_keep_every_value_and_show_the_latest() -> None:
    older = head("x", 1, narrative="First, corrected.")
    newer = head("y", 2, narrative="Second account.")
    merged = merge.merge(BASE, [], [newer, older])
    (conflict,) = merged.conflicts
    assert conflict.path == "narrative"
    assert [c.value for c in conflict.values] == ["First, corrected.", "Second account."]
    assert [c.versions for c in conflict.values] == [("x",), ("y",)]
    assert merged.answers["narrative"] == "Second account."  # provisional: the latest head


def test_narrative_text_is_never_merged_character_by_character() -> None:
    one = head("x", 1, narrative=BASE["narrative"] + " Two died.")
    other = head("y", 2, narrative="Before dawn: " + BASE["narrative"])
    assert [c.path for c in merge.merge(BASE, [], [one, other]).conflicts] == ["narrative"]


def test_lists_of_items_with_ids_merge_as_sets_and_items_field_by_field() -> None:
    people = BASE["victims"]["individuals"]
    one = head("x", 1, victims={"total": 2, "individuals": [*people, {"id": "v2", "name": "Omar"}]})
    older_sara = [{"id": "v1", "name": "Sara", "age": 8}, {"id": "v3", "name": "Laila"}]
    other = head("y", 2, victims={"total": 2, "individuals": older_sara})
    merged = merge.merge(BASE, [], [one, other])
    assert merged.clean
    assert merged.answers["victims"]["individuals"] == [
        {"id": "v1", "name": "Sara", "age": 8},
        {"id": "v2", "name": "Omar"},
        {"id": "v3", "name": "Laila"},
    ]


def test_removing_an_item_another_side_changed_is_a_conflict() -> None:
    gone = head("x", 1, victims={"total": 2, "individuals": []})
    changed = head(
        "y", 2, victims={"total": 2, "individuals": [{"id": "v1", "name": "Sara", "age": 9}]}
    )
    merged = merge.merge(BASE, [], [gone, changed])
    (conflict,) = merged.conflicts
    assert conflict.path == "victims.individuals[v1]"
    assert conflict.values[0].value is MISSING


def test_sections_granularity_makes_a_whole_group_compete() -> None:
    one = head("x", 1, victims={**BASE["victims"], "total": 1})
    other = head(
        "y",
        2,
        victims={**BASE["victims"], "individuals": [*BASE["victims"]["individuals"], {"id": "v2"}]},
    )
    assert merge.merge(BASE, [], [one, other]).clean
    coarse = merge.merge(BASE, [], [one, other], Granularity.SECTIONS)
    assert [c.path for c in coarse.conflicts] == ["victims"]


def test_put_sets_and_removes_by_path() -> None:
    answers: dict[str, Any] = {"victims": {"individuals": [{"id": "v1", "age": 3}]}}
    merge.put(answers, ("victims", "individuals", "[v1]", "age"), 4)
    merge.put(answers, ("victims", "individuals", "[v2]"), {"id": "v2"})
    merge.put(answers, ("perpetrator", "parties"), ["isis"])
    merge.put(answers, ("victims", "individuals", "[v1]"), MISSING)
    assert answers == {
        "victims": {"individuals": [{"id": "v2"}]},
        "perpetrator": {"parties": ["isis"]},
    }


def test_common_ancestor_of_a_criss_cross_is_the_same_choice_everywhere() -> None:
    parents = {"r": (), "a": ("r",), "b": ("r",), "m1": ("a", "b"), "m2": ("a", "b")}
    assert merge.common_ancestor(parents, ["m1", "m2"]) == "b"  # a and b are both nearest
    assert merge.common_ancestor(parents, ["a", "b"]) == "r"
    assert merge.common_ancestor(parents, ["a"]) == "a"


values = st.one_of(st.integers(0, 3), st.sampled_from(["p", "q"]), st.just(MISSING))


@given(st.lists(st.dictionaries(st.sampled_from("abc"), values), min_size=2, max_size=4), st.data())
def test_the_order_heads_arrive_in_never_changes_the_merge(
    sides: list[dict[str, Any]], data: st.DataObject
) -> None:
    heads = [
        Head(f"v{n}", "d" * 64, HLC(n, 0), {k: v for k, v in side.items() if v is not MISSING})
        for n, side in enumerate(sides)
    ]
    shuffled = data.draw(st.permutations(heads))
    base = {"a": 0, "b": "p"}
    assert merge.merge(base, [], heads) == merge.merge(base, [], shuffled)
    result = merge.merge(base, [], heads)
    for conflict in result.conflicts:  # every value some head set is kept
        setters = {
            h.version
            for h in heads
            if h.answers.get(conflict.path, MISSING) != base.get(conflict.path, MISSING)
        }
        assert {v for c in conflict.values for v in c.versions} == setters
