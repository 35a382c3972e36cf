import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError


@pytest.mark.parametrize(
    ("text", "ids", "canonical"),
    [
        ("0", (0,), "0"),
        ("0-3", (0, 1, 2, 3), "0-3"),
        ("0,1", (0, 1), "0-1"),
        ("0-8,18-26", (*range(9), *range(18, 27)), "0-8,18-26"),
        ("3,1,2", (1, 2, 3), "1-3"),
        (" 5 , 7-8 ", (5, 7, 8), "5,7-8"),
        ("2-2", (2,), "2"),
        ("1,1,1", (1,), "1"),
    ],
)
def test_parse_and_format(text, ids, canonical):
    assert parse_cpu_list(text) == ids
    assert format_cpu_list(ids) == canonical
    assert parse_cpu_list(canonical) == ids


@pytest.mark.parametrize("text", ["", " ", "0-", "-1", "3-1", "a", "1,,2", "1-2-3", "0x1", "٣"])
def test_bad_lists_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_cpu_list(text)


def test_backwards_range_says_how_to_fix():
    with pytest.raises(UsageError, match="runs backwards") as info:
        parse_cpu_list("3-1")
    assert "1-3" in str(info.value)


@given(st.sets(st.integers(min_value=0, max_value=4096), min_size=1))
def test_round_trip(ids):
    assert parse_cpu_list(format_cpu_list(ids)) == tuple(sorted(ids))


@given(st.text(max_size=30))
def test_parser_raises_only_usage_errors(text):
    try:
        ids = parse_cpu_list(text)
    except UsageError:
        return
    assert ids == tuple(sorted(set(ids)))
    assert all(i >= 0 for i in ids)
