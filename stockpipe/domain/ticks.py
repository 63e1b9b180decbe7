"""The tick: one quote of one symbol at one instant, and the rules that make it valid.

A tick travels as JSON from the producer through Kinesis. Prices are kept as
``Decimal`` end to end so that DynamoDB stores exactly what was sent and so that
indicator ties are exact, not float accidents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# Yahoo-style symbols: AAPL, BRK-B, ^GSPC, EURUSD=X, RDS.A (matched whole: no trailing newline).
SYMBOL_PATTERN = re.compile(r"\^?[A-Z0-9][A-Z0-9.=\-]{0,14}")
REQUIRED_FIELDS = ("symbol", "timestamp", "price")
# Far above any real quote or volume, far below what DynamoDB can store (9.9E+125).
MAX_NUMBER = Decimal("1e15")
# The smallest non-zero magnitude a price may have (DynamoDB stores down to 1E-130; a quote has far
# fewer decimals), and DynamoDB's precision: 38 significant digits.
MIN_MAGNITUDE = Decimal("1e-12")
MAX_DIGITS = 38
# A tick is a few hundred bytes; anything much larger is not one (and would not fit DynamoDB's 400 KB
# item, or a dead letter in SQS, if it were stored as it came).
MAX_RECORD_BYTES = 64 * 1024
MAX_TEXT = 64  # source: a short label
# Timestamps between these sort correctly as text (four-digit years) and are plausible quotes.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class InvalidTick(ValueError):
    """A tick that must not be stored. The message names the field at fault."""


def canonical_timestamp(value: Any) -> str:
    """ISO 8601 in, fixed-width UTC with milliseconds out (sorts as text, which DynamoDB needs).

    A timestamp without an offset is taken as UTC.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidTick(f"timestamp: not ISO 8601: {_short(value)}") from None
    else:
        raise InvalidTick(f"timestamp: expected an ISO 8601 string, got {_short(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the year 1
        raise InvalidTick(f"timestamp: out of range: {_short(value)}") from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidTick(f"timestamp: must be between {EARLIEST.year} and {LATEST.year - 1}, got {_short(value)}")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stamp(epoch_ms: int) -> str:
    """An instant as the table writes it: epoch milliseconds, as a string (``"1796050549123"``).

    Not a number: the engine checks a number digit by digit on every write, a string it only types;
    and not ISO 8601 text, which is longer in every request and stream event. Near the flow's limit
    each such cost shows in the p99 (docs/performance.md: at 1,000 ticks/s, p99 to the item 126-196
    ms with these strings, 235-269 ms with ISO text). Thirteen digits until the year 2286, so they
    sort as text too."""
    return str(epoch_ms)


def stamp_ms(value: Any) -> int | None:
    """A time written by ``stamp`` back in epoch milliseconds; an epoch-millisecond number (as items
    written before the stamps were strings hold them) as it is; None for anything else."""
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        try:
            return int(value)
        except (ValueError, OverflowError):  # a Decimal NaN or infinity
            return None
    return None


def _short(value: Any, limit: int = 60) -> str:
    """A value for a reason: repr, cut to ``limit`` characters (a reason is one short line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _shown(value: Any) -> str:
    """A value as the user wrote it: 12.5, not Decimal('12.5')."""
    if isinstance(value, _Constant):
        return value.name
    return _short(str(value)).strip("'") if isinstance(value, Decimal) else _short(value)


class _Constant:
    """NaN, Infinity or -Infinity in the JSON: kept until the field it sits in is known, so the
    reason names the field."""

    def __init__(self, name: str) -> None:
        self.name = name


def _decimal(field: str, value: Any, *, positive: bool) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InvalidTick(f"{field}: expected a number, got {_shown(value)}")
    if isinstance(value, _Constant) or (isinstance(value, float) and not math.isfinite(value)):
        raise InvalidTick(f"{field}: must be a finite number, got {_shown(value)}")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise InvalidTick(f"{field}: expected a number, got {_shown(value)}") from None
    if not number.is_finite():
        raise InvalidTick(f"{field}: must be a finite number, got {_shown(value)}")
    if positive and number <= 0:
        raise InvalidTick(f"{field}: must be a positive number, got {_shown(value)}")
    if abs(number) > MAX_NUMBER:
        raise InvalidTick(f"{field}: must be a number below {MAX_NUMBER:.0e}, got {_shown(value)}")
    if number and abs(number) < MIN_MAGNITUDE:
        raise InvalidTick(f"{field}: must be 0 or at least {MIN_MAGNITUDE:.0e} in size, got {_shown(value)}")
    # Counted as written, trailing zeros included: boto3 refuses to send more than 38 (Rounded).
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise InvalidTick(f"{field}: more than {MAX_DIGITS} significant digits (what DynamoDB keeps), "
                          f"got {_shown(value)}")
    return number


def _volume(value: Any) -> int | None:
    if value is None or value == "":
        return None
    number = _decimal("volume", value, positive=False)
    if number < 0 or number != number.to_integral_value():
        raise InvalidTick(f"volume: must be a whole number >= 0, got {_shown(value)}")
    return int(number)


def _symbol(value: Any) -> str:
    if not isinstance(value, str) or not SYMBOL_PATTERN.fullmatch(value):
        raise InvalidTick(f"symbol: expected an upper-case ticker like AAPL or BRK-B, got {_short(value)}")
    return value


def _source(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_TEXT or not text.isprintable():
        raise InvalidTick(f"source: expected a short printable label (at most {MAX_TEXT} characters), "
                          f"got {_short(value)}")
    return text


@dataclass(frozen=True)
class Tick:
    symbol: str
    timestamp: str
    price: Decimal
    previous_close: Decimal | None = None
    volume: int | None = None
    source: str = "unknown"

    @property
    def id(self) -> str:
        """Deterministic identity: the same quote sent twice is the same tick downstream."""
        return tick_id(self.symbol, self.timestamp)

    @property
    def date(self) -> str:
        return self.timestamp[:10]

    @property
    def change(self) -> Decimal | None:
        if self.previous_close is None:
            return None
        return self.price - self.previous_close

    @property
    def change_percent(self) -> Decimal | None:
        """Unrounded, so that the anomaly rule compares the true move."""
        if self.previous_close is None:
            return None
        return (self.price - self.previous_close) / self.previous_close * 100

    def to_record(self) -> dict[str, str | Decimal | int]:
        """The JSON object the producer sends (seeds: price, previous_close, change, change_percent, volume)."""
        record: dict[str, str | Decimal | int | None] = {
            "id": self.id,
            "symbol": self.symbol,
            "timestamp": self.timestamp,
            "price": self.price,
            "previous_close": self.previous_close,
            "change": self.change,
            "change_percent": None if self.change_percent is None else round(self.change_percent, 4),
            "volume": self.volume,
            "source": self.source,
        }
        return {key: value for key, value in record.items() if value is not None}

    def to_json(self) -> str:
        return dumps(self.to_record())


def tick_id(symbol: str, timestamp: str) -> str:
    return f"{symbol}#{timestamp}"


def dumps(obj: Any) -> str:
    """Compact, key-sorted JSON. Decimals become JSON numbers; prices carry few digits, so
    json.loads(..., parse_float=Decimal) gives the same value back."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, default=_json_number)


def _json_number(value: object) -> int | float:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        # A str exponent ('n', 'N', 'F') is NaN or Infinity, which no JSON number can hold;
        # the domain never makes them (_decimal refuses them).
        if isinstance(exponent, int):
            return int(value) if value == value.to_integral_value() and exponent >= 0 else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def tick_from_mapping(data: Mapping[str, Any], *, source: str | None = None) -> Tick:
    """Validate a decoded tick. Raises InvalidTick naming the first field at fault."""
    if not isinstance(data, Mapping):
        raise InvalidTick(f"payload: expected a JSON object, got {type(data).__name__}")
    missing = [name for name in REQUIRED_FIELDS if data.get(name) in (None, "")]
    if missing:
        raise InvalidTick(f"missing field(s): {', '.join(missing)}")
    previous_close = data.get("previous_close")
    return Tick(
        symbol=_symbol(data["symbol"]),
        timestamp=canonical_timestamp(data["timestamp"]),
        price=_decimal("price", data["price"], positive=True),
        previous_close=None
        if previous_close in (None, "")
        else _decimal("previous_close", previous_close, positive=True),
        volume=_volume(data.get("volume")),
        source=_source(source or data.get("source") or "unknown"),
    )


def parse_tick(payload: bytes | str) -> Tick:
    """Decode one raw record (as it sits in Kinesis) into a valid Tick, or raise InvalidTick.

    Total: whatever the bytes, the only exception is InvalidTick, whose reason names the field at
    fault (or ``payload`` when there is no field yet). A shard must never stall on input.
    """
    size = len(payload.encode("utf-8", "replace") if isinstance(payload, str) else payload)
    if size > MAX_RECORD_BYTES:
        raise InvalidTick(f"payload: {size} bytes, more than a tick may be ({MAX_RECORD_BYTES})")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidTick(f"payload: not UTF-8 text (byte {error.start})") from None
    try:
        data = json.loads(payload, parse_float=Decimal, parse_constant=_Constant)
    except RecursionError:
        raise InvalidTick("payload: JSON nested too deeply") from None
    except ValueError as error:
        raise InvalidTick(f"payload: not JSON ({error.__class__.__name__}: {error})") from None
    try:
        return tick_from_mapping(data)
    except InvalidTick:
        raise
    except Exception as error:  # noqa: BLE001 - a rule we did not foresee must still not stall the shard
        raise InvalidTick(f"payload: cannot be read as a tick ({type(error).__name__}: {_short(str(error))})") from None


@dataclass(frozen=True)
class Rejected:
    """A record that could not be stored, on its way to the dead-letter queue with its reason."""

    reason: str
    payload: bytes
    stage: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The same record quarantined again (a retried batch) has the same key: readers keep one."""
        where = json.dumps(self.context, sort_keys=True, default=str)
        return hashlib.sha256(b"\0".join((self.stage.encode(), where.encode(), self.payload))).hexdigest()[:32]

    def to_message(self) -> dict[str, Any]:
        try:
            text: str | None = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        body: dict[str, Any] = {"dead_letter_id": self.key, "reason": self.reason, "stage": self.stage,
                                **self.context}
        if text is not None:
            body["payload"] = text
        else:
            body["payload_base64"] = base64.b64encode(self.payload).decode()
        return body
