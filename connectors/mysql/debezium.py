"""What Debezium's MySQL connector writes differently (compat mode, `cdc.compat`)."""

from __future__ import annotations

from cdc.compat import DebeziumProfile

DEBEZIUM = DebeziumProfile(
    default_precision=0,  # DATETIME / TIME without a declared precision hold whole seconds
    time_millis_up_to_precision_3=False,  # time.precision.mode=adaptive_time_microseconds
    pad_bits=True,  # BIT(n) padded to ceil(n/8) bytes
    decimal_special_names=False,  # DECIMAL has no NaN / Infinity
    geometry_struct=True,  # spatial types as Debezium's Geometry struct
)
