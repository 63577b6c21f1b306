"""Per-pipeline rows of `cdc status --run`: states, positions, lag, rates from two scrapes, last parity check."""

from cdc.run_status import lsn_text, parse_samples, summarise

BEFORE = """
cdc_component_up{component="capture:shop:postgresql@db1:5432/shop"} 1
cdc_component_up{component="apply:shop->mysql@db2:3306/shop"} 1
cdc_component_up{component="capture:crm:mysql@db3:3306/crm"} 0
cdc_events_captured_total{pipeline="shop",table="public.orders"} 100
cdc_events_captured_total{pipeline="shop",table="public.items"} 50
cdc_events_applied_total{pipeline="shop",table="public.orders"} 90
"""

AFTER = """
cdc_component_up{component="capture:shop:postgresql@db1:5432/shop"} 1
cdc_component_up{component="apply:shop->mysql@db2:3306/shop"} 1
cdc_component_up{component="capture:crm:mysql@db3:3306/crm"} 0
cdc_events_captured_total{pipeline="shop",table="public.orders"} 200
cdc_events_captured_total{pipeline="shop",table="public.items"} 70
cdc_events_applied_total{pipeline="shop",table="public.orders"} 150
cdc_capture_acked_position{pipeline="shop"} 23803720
cdc_capture_acked_position{pipeline="crm"} 4711
cdc_capture_lag_seconds{pipeline="shop"} 0.25
cdc_source_lag_bytes{pipeline="shop"} 1024
cdc_source_retained_wal_bytes{pipeline="shop"} 65536
cdc_verify_last_check_timestamp_seconds{pipeline="shop"} 990
cdc_verify_last_exit_code{pipeline="shop"} 1
cdc_verify_differences_confirmed{pipeline="shop"} 3
"""


def test_rows_per_pipeline_with_rates_between_two_scrapes():
    shop, crm = summarise(parse_samples(AFTER), parse_samples(BEFORE), seconds=2.0, now=1000.0)[::-1]
    assert (shop.pipeline, shop.capture, shop.apply) == ("shop", "up", "up")
    assert shop.position == "0/16B3748" and shop.lag_seconds == 0.25 and shop.lag_bytes == 1024
    assert shop.retained_wal_bytes == 65536
    assert (shop.captured_per_second, shop.applied_per_second) == (60.0, 30.0)
    assert (shop.captured_total, shop.applied_total) == (270, 150)
    assert (shop.last_check_seconds_ago, shop.last_check_result, shop.confirmed_differences) == (10.0, "differences", 3)
    assert (crm.capture, crm.apply, crm.position, crm.captured_per_second) == ("down", None, "4711", None)


def test_one_scrape_has_no_rates():
    [shop] = summarise(parse_samples(BEFORE), now=0)[1:]
    assert shop.captured_per_second is None and shop.captured_total == 150


def test_lsn_text():
    assert lsn_text(0x1_0000_0010) == "1/10" and lsn_text(23803720) == "0/16B3748"


def test_metrics_url_forms():
    from cdc.run_status import metrics_url

    assert metrics_url("127.0.0.1:9187") == "http://127.0.0.1:9187/metrics"
    assert metrics_url("9187") == "http://127.0.0.1:9187/metrics"
    assert metrics_url("http://h:1/") == "http://h:1/metrics" and metrics_url("http://h:1/metrics") == "http://h:1/metrics"


def test_render_table_shows_each_pipeline():
    from rich.console import Console

    from cdc.run_status import render_table

    rows = summarise(parse_samples(AFTER), parse_samples(BEFORE), seconds=2.0, now=1000.0)
    console = Console(width=200, record=True)
    console.print(render_table(rows, "127.0.0.1:9187"))
    text = console.export_text()
    assert "shop" in text and "crm" in text and "0/16B3748" in text and "3 confirmed" in text and "64.0 KiB" in text
