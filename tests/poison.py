"""Records no shard may stall on, each with the start of the reason it must be quarantined with
(the field at fault named first). Used by the unit tier (parse_tick) and the reliability suite (the
real flow). Every one is a record as a producer could put it in Kinesis."""

from __future__ import annotations

T = '"timestamp": "2026-03-02T15:00:00Z"'


def tick(body: str) -> bytes:
    return ("{" + body + "}").encode()


POISON: list[tuple[str, bytes, str]] = [
    ("not JSON", b"this is not json", "payload: not JSON"),
    ("empty", b"", "payload: not JSON"),
    ("not UTF-8", b"\xff\xfe\xfd", "payload: not UTF-8 text"),
    ("900 KB of invalid UTF-8", b"\xff" * 900_000, "payload: 900000 bytes, more than a tick may be"),
    ("JSON array", b"[1, 2]", "payload: expected a JSON object"),
    ("JSON null", b"null", "payload: expected a JSON object"),
    ("nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "payload: JSON nested too deeply"),
    ("missing price", tick(f'"symbol": "AAPL", {T}'), "missing field(s): price"),
    ("missing symbol and timestamp", tick('"price": 1'), "missing field(s): symbol, timestamp"),
    ("price is text", tick(f'"symbol": "AAPL", {T}, "price": "abc"'), "price: expected a number"),
    ("price is true", tick(f'"symbol": "AAPL", {T}, "price": true'), "price: expected a number"),
    ("price NaN", tick(f'"symbol": "AAPL", {T}, "price": NaN'), "price: must be a finite number, got NaN"),
    ("price Infinity", tick(f'"symbol": "AAPL", {T}, "price": Infinity'), "price: must be a finite number, got Infinity"),
    ("price -Infinity", tick(f'"symbol": "AAPL", {T}, "price": -Infinity'),
     "price: must be a finite number, got -Infinity"),
    ("price zero", tick(f'"symbol": "AAPL", {T}, "price": 0'), "price: must be a positive number"),
    ("price negative", tick(f'"symbol": "AAPL", {T}, "price": -12.5'), "price: must be a positive number"),
    ("price 1e-200", tick(f'"symbol": "AAPL", {T}, "price": 1e-200'), "price: must be 0 or at least 1e-12"),
    ("price 40 digits", tick(f'"symbol": "AAPL", {T}, "price": 1.234567890123456789012345678901234567890'),
     "price: more than 38 significant digits"),
    ("price 1e999999", tick(f'"symbol": "AAPL", {T}, "price": "1e999999"'), "price: must be a number below"),
    ("timestamp unparseable", tick('"symbol": "AAPL", "timestamp": "yesterday", "price": 1'),
     "timestamp: not ISO 8601"),
    ("timestamp before year 1", tick('"symbol": "AAPL", "timestamp": "0001-01-01T00:00:00+01:00", "price": 1'),
     "timestamp: out of range"),
    ("timestamp year 999", tick('"symbol": "AAPL", "timestamp": "0999-06-01T00:00:00Z", "price": 1'),
     "timestamp: must be between 1970 and 2099"),
    ("timestamp far future", tick('"symbol": "AAPL", "timestamp": "9999-12-31T23:59:59Z", "price": 1'),
     "timestamp: must be between 1970 and 2099"),
    ("timestamp a number", tick('"symbol": "AAPL", "timestamp": 1764460800, "price": 1'),
     "timestamp: expected an ISO 8601 string"),
    ("symbol with newline", tick(f'"symbol": "AAPL\\n", {T}, "price": 1'), "symbol: expected"),
    ("symbol with space", tick(f'"symbol": "AA PL", {T}, "price": 1'), "symbol: expected"),
    ("symbol with U+200B", tick(f'"symbol": "AAPL\\u200b", {T}, "price": 1'), "symbol: expected"),
    ("symbol lower case", tick(f'"symbol": "aapl", {T}, "price": 1'), "symbol: expected"),
    ("symbol a number", tick(f'"symbol": 42, {T}, "price": 1'), "symbol: expected"),
    ("volume negative", tick(f'"symbol": "AAPL", {T}, "price": 1, "volume": -1'), "volume: must be a whole number"),
    ("volume fractional", tick(f'"symbol": "AAPL", {T}, "price": 1, "volume": 1.5'), "volume: must be a whole number"),
    ("previous close zero", tick(f'"symbol": "AAPL", {T}, "price": 1, "previous_close": 0'),
     "previous_close: must be a positive number"),
    ("500 KB extra field", tick(f'"symbol": "AAPL", {T}, "price": 1, "note": "{"x" * 500_000}"'),
     "payload: 500"),
    ("record near 1 MiB", b'{"symbol": "AAPL", "pad": "' + b"y" * (1024 * 1024 - 100) + b'"}', "payload: 1048"),
    ("source too long", tick(f'"symbol": "AAPL", {T}, "price": 1, "source": "{"s" * 1000}"'),
     "source: expected a short printable label"),
]
