from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelwire.ids import IdGenerator, decode_id, encode_id, id_time_ms, is_valid_id


def test_ids_are_time_ordered_and_unique():
    generator = IdGenerator(node=3)
    ids = [generator.new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_two_nodes_same_millisecond_differ():
    frozen = lambda: 1_700_000_000.0  # noqa: E731
    first = IdGenerator(node=1, clock=frozen)
    second = IdGenerator(node=2, clock=frozen)
    left = {first.new_id() for _ in range(1000)}
    right = {second.new_id() for _ in range(1000)}
    assert not left & right
    assert {id_time_ms(value) for value in left | right} == {1_700_000_000_000}


def test_clock_stepping_back_keeps_order():
    times = iter([100.0, 99.0, 98.0])
    generator = IdGenerator(node=0, clock=lambda: next(times))
    ids = [generator.new_id() for _ in range(3)]
    assert ids == sorted(ids)


def test_observe_moves_clock_forward():
    late = IdGenerator(node=0, clock=lambda: 200.0).new_id()
    generator = IdGenerator(node=0, clock=lambda: 100.0)
    generator.observe(late)
    assert generator.new_id() > late


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_encode_decode_round_trip(value):
    assert decode_id(encode_id(value)) == value


def test_invalid_ids_rejected():
    assert not is_valid_id("short")
    assert not is_valid_id("U" * 26)
    assert not is_valid_id("Z" * 26)
    assert is_valid_id(IdGenerator(node=1).new_id())
