"""The XPath subset of XLSForm's relevant and constraint columns (core/xpath.py): each
construct translated into JSON Schema that means what XPath means, an unanswered field included,
and everything outside the subset refused with what is not supported."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fieldsync.core import odk_regex, xpath

PATHS = {
    "a": xpath.Target(("a",), "text"),
    "n": xpath.Target(("n",), "integer"),
    "m": xpath.Target(("m",), "many"),
    "o": xpath.Target(("o",), "one"),
    "d": xpath.Target(("d",), "decimal"),
    "t": xpath.Target(("g", "t"), "text"),
}


def holds(expression: str, answers: dict[str, Any]) -> bool:
    schema = xpath.condition(xpath.parse(expression), PATHS.__getitem__)
    return bool(Draft202012Validator(schema).is_valid(answers))


@pytest.mark.parametrize(
    ("expression", "true_for", "false_for"),
    [
        ("${a} = 'x'", {"a": "x"}, [{"a": "y"}, {}]),
        ("${a} != 'x'", {"a": "y"}, [{"a": "x"}]),
        ("'x' = ${a}", {"a": "x"}, [{}]),
        ("${n} > 3", {"n": 4}, [{"n": 3}, {}]),
        ("3 < ${n}", {"n": 4}, [{"n": 3}]),
        ("${n} <= 3 and ${n} >= 1", {"n": 2}, [{"n": 0}, {"n": 4}]),
        ("${n} = 1 or ${a} = 'x'", {"a": "x"}, [{"n": 2, "a": "y"}]),
        ("not(${a} = 'x')", {}, [{"a": "x"}]),
        ("selected(${m}, 'v')", {"m": ["u", "v"]}, [{"m": ["u"]}, {}]),
        ("count-selected(${m}) >= 2", {"m": ["u", "v"]}, [{"m": ["u"]}, {}]),
        ("count-selected(${m}) < 2", {}, [{"m": ["u", "v"]}]),
        ("string-length(${a}) > 2", {"a": "abc"}, [{"a": "ab"}, {}]),
        ("string-length(${a}) = 0", {}, [{"a": "a"}]),
        ("regex(${a}, '^[0-9]+$')", {"a": "123"}, [{"a": "12a"}, {}]),
        ("${t} = 'in a group'", {"g": {"t": "in a group"}}, [{"g": {}}, {}]),
        ("(${a} = 'x')", {"a": "x"}, [{}]),
        # review F1: '' is what an unanswered question equals
        ("${a} != ''", {"a": "x"}, [{}]),
        ("${a} = ''", {}, [{"a": "x"}]),
        ("${t} != ''", {"g": {"t": "x"}}, [{"g": {}}, {}]),
        # review F2: the comparison follows the answer's kind
        ("${o} = 1", {"o": "1"}, [{"o": "2"}, {}]),
        ("${n} = '18'", {"n": 18}, [{"n": 17}]),
        ("selected(${o}, 'x')", {"o": "x"}, [{"o": "y"}, {}]),
    ],
)
def test_each_construct_means_what_xpath_means(
    expression: str, true_for: dict[str, Any], false_for: list[dict[str, Any]]
) -> None:
    assert holds(expression, true_for)
    for answers in false_for:
        assert not holds(expression, answers), answers


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("${n} + 1 > 3", "cannot read"),
        ("today() > ${n}", "'today'"),
        ("${a} = ${n}", "only with a literal"),
        ("${a}", "not a condition"),
        ("${n} > 1.5", "compared with 1.5"),
        ("${a} > 'x'", "compares numbers"),
        ("selected(${m})", "takes 2"),
        ("regex(${a}, '(')", "does not compile"),
        ("${a} = 'x' and", "ends where a value"),
        ("${a} = 'x')", "unexpected"),
        ("/data/a = 'x'", "cannot read"),
        ("count-selected(${m}) != 1", "'!='"),
        (". = 'x'", "only a constraint"),
        ("x" * 2001, "longer than"),
        ("${a} = 5", "compared with 5"),
        ("${m} = 'x'", "selected()"),
        ("${d} > 1", "compares numbers"),
        ("${d} = '1.5'", "decimal"),
        ("string-length(${n}) > 2", "integer answer"),
        ("count-selected(${o}) > 1", "one answer"),
        ("selected(${a}, 'x')", "select_one or select_multiple"),
        ("regex(${n}, '^1')", "a text"),
        ("regex(${a}, '^(a+)+$')", "catastrophic"),
        ("regex(${a}, '\\w+')", "means otherwise"),
        ("regex(${a}, '(?=x)')", "look-around"),
    ],
)
def test_anything_outside_the_subset_is_refused_with_what(expression: str, why: str) -> None:
    with pytest.raises(xpath.Untranslatable, match=why):
        xpath.condition(xpath.parse(expression), PATHS.__getitem__)


def test_a_constraint_tests_the_answer_itself() -> None:
    node = xpath.parse(". >= 0 and . < 10")
    schema = xpath.field_schema(node, PATHS.__getitem__, PATHS["n"])
    validator = Draft202012Validator(schema)
    assert validator.is_valid(3) and not validator.is_valid(10) and not validator.is_valid(-1)
    named = xpath.field_schema(xpath.parse("${n} < 10"), PATHS.__getitem__, PATHS["n"])
    assert named == {"type": "integer", "exclusiveMaximum": 10}
    with pytest.raises(xpath.Untranslatable, match="only the answer itself"):
        xpath.field_schema(xpath.parse("${a} = 'x'"), PATHS.__getitem__, PATHS["n"])


def test_reading_a_long_hostile_expression_stays_linear() -> None:
    deep = "(" * 500 + "${a} = 'x'" + ")" * 500
    with pytest.raises(xpath.Untranslatable, match="nested deeper"):
        xpath.parse(deep)
    assert holds("(" * 30 + "${a} = 'x'" + ")" * 30, {"a": "x"})
    wide = " or ".join(["${a} = 'x'"] * 100)
    assert holds(wide, {"a": "x"})


def test_a_regex_means_what_it_means_in_odk() -> None:
    """Review F8: under Python, \\d takes every script's digits and $ a final newline."""
    pattern = odk_regex.translated("^\\d{3}$")
    assert pattern == "^[0-9]{3}$(?!\\n)"
    assert odk_regex.translated("[\\d$]") == "[0-9$]"
    import re

    assert re.search(pattern, "123") and not re.search(pattern, "١٢٣")
    assert not re.search(pattern, "123\n")
