"""Tick validation: every rule names the field at fault."""

from decimal import Decimal

import pytest

from stockpipe.domain import InvalidTick, Tick, canonical_timestamp, parse_tick, stamp, stamp_ms
from stockpipe.domain.ticks import dumps
from tests.poison import POISON


def test_a_valid_tick_round_trips_exactly():
    tick = Tick("AAPL", "2026-01-05T14:30:00.000Z", Decimal("190.12"), Decimal("188.00"), 1200, "synthetic")
    again = parse_tick(tick.to_json().encode())
    assert again == tick
    assert again.id == "AAPL#2026-01-05T14:30:00.000Z"
    assert tick.to_record()["change"] == Decimal("2.12")
    assert tick.to_record()["change_percent"] == Decimal("1.1277")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-05T14:30:00Z", "2026-01-05T14:30:00.000Z"),
        ("2026-01-05T09:30:00-05:00", "2026-01-05T14:30:00.000Z"),
        ("2026-01-05T14:30:00.123456+00:00", "2026-01-05T14:30:00.123Z"),
        ("2026-01-05 14:30:00", "2026-01-05T14:30:00.000Z"),  # no offset: UTC
    ],
)
def test_timestamps_become_fixed_width_utc(value, expected):
    assert canonical_timestamp(value) == expected


def test_stored_times_are_epoch_milliseconds_as_strings_and_read_back_exactly():
    for ms in (1796050549123, 1796050549000, 0):
        assert stamp_ms(stamp(ms)) == ms
    assert stamp(1796050549123) == "1796050549123"
    # Items written when the times were numbers read as they are; anything else is no time.
    assert [stamp_ms(value) for value in (Decimal(1796050549123), 1796050549123)] == [1796050549123] * 2
    assert [stamp_ms(value) for value in ("soon", "-5", "1e3", "\u0661\u0662", "", True, None, Decimal("NaN"), 1.5)] \
        == [None] * 9


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "payload: not JSON"),
        (b"\xff\xfe", "payload: not UTF-8"),
        (b"[1, 2]", "payload: expected a JSON object"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z"}', "missing field(s): price"),
        (b'{"price": 1}', "missing field(s): symbol, timestamp"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": -3}', "price: must be a positive"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": 0}', "price: must be a positive"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": NaN}', "price: must be a finite number, got NaN"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": Infinity}', "Infinity"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": "1e999999"}', "price: must be a number below"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": true}', "price: expected a number"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": "abc"}', "price: expected a number"),
        (b'{"symbol": "AAPL", "timestamp": "yesterday", "price": 1}', "timestamp: not ISO 8601"),
        (b'{"symbol": "aapl", "timestamp": "2026-01-05T14:30:00Z", "price": 1}', "symbol: expected"),
        (b'{"symbol": "AA PL", "timestamp": "2026-01-05T14:30:00Z", "price": 1}', "symbol: expected"),
        (b'{"symbol": "AAPL\\u200b", "timestamp": "2026-01-05T14:30:00Z", "price": 1}', "symbol: expected"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": 1, "volume": -1}', "volume:"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": 1, "volume": 1.5}', "volume:"),
        (b'{"symbol": "AAPL", "timestamp": "2026-01-05T14:30:00Z", "price": 1, "previous_close": 0}',
         "previous_close: must be a positive"),
    ],
)
def test_bad_records_are_rejected_with_the_field_named(payload, reason):
    with pytest.raises(InvalidTick) as caught:
        parse_tick(payload)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("kind", "payload", "reason"), POISON, ids=[kind for kind, _, _ in POISON])
def test_no_record_escapes_validation_and_each_reason_names_what_is_wrong(kind, payload, reason):
    with pytest.raises(InvalidTick) as caught:
        parse_tick(payload)
    assert str(caught.value).startswith(reason)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200  # one short line


@pytest.mark.parametrize("symbol", ["AAPL", "BRK-B", "^GSPC", "EURUSD=X", "RDS.A", "7203.T"])
def test_yahoo_symbols_are_accepted(symbol):
    assert parse_tick(dumps({"symbol": symbol, "timestamp": "2026-01-05T14:30:00Z", "price": 1})).symbol == symbol


def test_change_percent_is_against_previous_close_and_absent_without_it():
    with_close = Tick("AAPL", "2026-01-05T14:30:00.000Z", Decimal("105.5"), Decimal("100"))
    assert with_close.change == Decimal("5.5")
    assert with_close.change_percent == Decimal("5.5")
    without = Tick("AAPL", "2026-01-05T14:30:00.000Z", Decimal("105.5"))
    assert without.change is None and without.change_percent is None
    assert "change_percent" not in without.to_record()
