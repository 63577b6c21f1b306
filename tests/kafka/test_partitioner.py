"""murmur2 and the key partitioner must match the Java client bit for bit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.kafka.partitioner import murmur2, partition_for, to_positive

# From Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (testMurmur2).
KAFKA_UTILS_TEST_CASES = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]
# Values computed with Kafka's Utils.murmur2, as quoted by Akka's Murmur2Spec (1 to 4 tail bytes).
JAVA_UTILS_VALUES = [
    (b"1", -1993445489),
    (b"12", 126087238),
    (b"123", -267702483),
    (b"1234", -1614185708),
    (b"12345", -1188365604),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST_CASES + JAVA_UTILS_VALUES)
def test_murmur2_matches_java_utils(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_to_positive_clears_the_sign_bit_like_java() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-2147483648) == 0
    assert to_positive(5) == 5


def test_partition_is_positive_hash_modulo_count() -> None:
    # murmur2(b"21") is negative: abs() would give another partition than toPositive().
    assert partition_for(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert partition_for(b"21", 7) != abs(-973932308) % 7


def test_null_key_goes_to_partition_zero() -> None:
    assert partition_for(None, 12) == 0


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_kafka_python_partitioner(data: bytes) -> None:
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    assert to_positive(murmur2(data)) == to_positive(kafka_python_murmur2(data))


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_partition_is_in_range(data: bytes, count: int) -> None:
    assert 0 <= partition_for(data, count) < count


def _compiled():
    from cdc.impl import IMPL, load_extension

    if IMPL != "cython":
        pytest.skip("the compiled module is not in use (CDC_PURE_PYTHON)")
    return load_extension("murmur2")


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=1000))
def test_compiled_partitioner_is_the_python_twin(data: bytes, count: int) -> None:
    from cdc.kafka.partitioner import python_murmur2, python_partition_for

    compiled = _compiled()
    assert compiled.murmur2(data) == python_murmur2(data)
    assert compiled.murmur2(bytearray(data)) == python_murmur2(data)
    assert compiled.partition_for(data, count) == python_partition_for(data, count)


def test_compiled_partitioner_on_kafka_vectors_and_none() -> None:
    compiled = _compiled()
    for data, expected in KAFKA_UTILS_TEST_CASES + JAVA_UTILS_VALUES:
        assert compiled.murmur2(data) == expected
    assert compiled.partition_for(None, 12) == 0
