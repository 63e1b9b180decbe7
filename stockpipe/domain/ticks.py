"""The tick: one quote of one symbol at one instant, and the rules that make it valid.

A tick travels as JSON from the producer through Kinesis. Prices are kept as
``Decimal`` end to end so that DynamoDB stores exactly what was sent and so that
indicator ties are exact, not float accidents.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

# Yahoo-style symbols: AAPL, BRK-B, ^GSPC, EURUSD=X, RDS.A
SYMBOL_PATTERN = re.compile(r"^\^?[A-Z0-9][A-Z0-9.=\-]{0,14}$")
REQUIRED_FIELDS = ("symbol", "timestamp", "price")
# Far above any real quote or volume, far below what DynamoDB can store (9.9E+125).
MAX_NUMBER = Decimal("1e15")


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
            raise InvalidTick(f"timestamp: not ISO 8601: {value!r}") from None
    else:
        raise InvalidTick(f"timestamp: expected an ISO 8601 string, got {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _shown(value: Any) -> str:
    """A value as the user wrote it: 12.5, not Decimal('12.5')."""
    return str(value) if isinstance(value, Decimal) else repr(value)


def _decimal(field: str, value: Any, *, positive: bool) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InvalidTick(f"{field}: expected a number, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
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
    return number


def _volume(value: Any) -> int | None:
    if value is None or value == "":
        return None
    number = _decimal("volume", value, positive=False)
    if number < 0 or number != number.to_integral_value():
        raise InvalidTick(f"volume: must be a whole number >= 0, got {_shown(value)}")
    return int(number)


def _symbol(value: Any) -> str:
    if not isinstance(value, str) or not SYMBOL_PATTERN.match(value):
        raise InvalidTick(f"symbol: expected an upper-case ticker like AAPL or BRK-B, got {value!r}")
    return value


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
        source=str(source or data.get("source") or "unknown"),
    )


def parse_tick(payload: bytes | str) -> Tick:
    """Decode one raw record (as it sits in Kinesis) into a valid Tick, or raise InvalidTick."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTick("payload: not UTF-8 text") from None
    try:
        data = json.loads(payload, parse_float=Decimal, parse_constant=_reject_constant)
    except InvalidTick:
        raise
    except ValueError as error:
        raise InvalidTick(f"payload: not JSON ({error.__class__.__name__}: {error})") from None
    return tick_from_mapping(data)


def _reject_constant(name: str) -> NoReturn:
    raise InvalidTick(f"payload: {name} is not a number a tick may carry")


@dataclass(frozen=True)
class Rejected:
    """A record that could not be stored, on its way to the dead-letter queue with its reason."""

    reason: str
    payload: bytes
    stage: str
    context: dict[str, Any] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        try:
            text: str | None = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        body: dict[str, Any] = {"reason": self.reason, "stage": self.stage, **self.context}
        if text is not None:
            body["payload"] = text
        else:
            body["payload_base64"] = base64.b64encode(self.payload).decode()
        return body
