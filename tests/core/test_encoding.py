from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldsync.core import encoding
from fieldsync.errors import MalformedData

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-encoding.MAX_SAFE_INTEGER, encoding.MAX_SAFE_INTEGER)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=("Cs",))), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_every_value_has_one_encoding_that_decodes_back(value: object) -> None:
    data = encoding.encode(value)
    assert encoding.decode(data) == value
    assert encoding.encode(encoding.decode(data)) == data


def test_encoding_is_sorted_compact_utf8() -> None:
    assert encoding.encode({"b": 1, "a": ["x", None, True]}) == b'{"a":["x",null,true],"b":1}'
    assert encoding.encode("سلام\n\x1b") == '"سلام\\n\\u001b"'.encode()


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 1}',  # white space
        b'{"a":1,"a":1}',  # duplicate key
        b'{"a":1.5}',  # float
        b'{"a":1e3}',  # exponent
        b'{"a":NaN}',
        b'{"a":9007199254740992}',  # beyond 2**53 - 1
        b'"\\u0041"',  # needless escape
        b'\xef\xbb\xbf{"a":1}',  # byte order mark
        b'"\xff"',  # not UTF-8
        b'"\\ud800"',  # lone surrogate
        b"[" * 100 + b"]" * 100,  # too deep
        b'{"a":1',  # truncated
    ],
)
def test_decode_refuses_anything_non_canonical(data: bytes) -> None:
    with pytest.raises(MalformedData):
        encoding.decode(data)


def test_decode_refuses_oversized_input_before_parsing() -> None:
    with pytest.raises(MalformedData, match="too large"):
        encoding.decode(b'"' + b"a" * 100 + b'"', max_bytes=50)


def test_encode_refuses_floats_and_deep_nesting() -> None:
    with pytest.raises(ValueError):
        encoding.encode({"x": 0.5})
    deep: list[object] = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError):
        encoding.encode(deep)
