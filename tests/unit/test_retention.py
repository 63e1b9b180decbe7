"""Retention (TICK_TTL_DAYS, RAW_GLACIER_DAYS, RAW_EXPIRE_DAYS): the settings, the expiry of each
item, the horizon every reader keeps to, and what init compares and sets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from stockpipe.domain import PricePoint
from stockpipe.domain.retention import DAY_SECONDS, EXPIRY_ATTRIBUTE, MARGIN_SECONDS, Retention
from stockpipe.domain.storing import Head, Known, RawRecord, decide, parse
from stockpipe.processing import process_batch, read
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision.stack import lifecycle
from stockpipe.provision.storage import Lifecycle, lifecycle_drift, lifecycle_rules
from stockpipe.provision.tables import ttl_drift
from stockpipe.settings import FunctionEnvironment, Settings, SettingsError
from stockpipe.trending import StoredTick, Windows, alerts_for
from tests.fakes import FakeArchive, FakeDeadLetters, FakeTable
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
TTL = Retention(DAY_SECONDS)


def epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp())


def now_for(horizon: str, retention: Retention = TTL) -> float:
    """The clock at which ``horizon`` is the oldest timestamp a batch still uses."""
    return epoch(horizon) + retention.seconds - MARGIN_SECONDS - 1


# -- settings -----------------------------------------------------------------------------------


def test_without_retention_settings_ticks_are_kept_and_raw_data_moves_to_glacier_after_90_days():
    settings = Settings.from_env({})
    assert (settings.tick_ttl_days, settings.raw_glacier_days, settings.raw_expire_days) == (None, 90, None)
    assert Retention.days(settings.tick_ttl_days) is None


@pytest.mark.parametrize(("env", "values"), [
    ({"TICK_TTL_DAYS": "30"}, (30, 90, None)),
    ({"RAW_GLACIER_DAYS": "0"}, (None, None, None)),  # 0: no transition
    ({"RAW_GLACIER_DAYS": ""}, (None, 90, None)),  # empty: the default
    ({"RAW_GLACIER_DAYS": "30", "RAW_EXPIRE_DAYS": "365"}, (None, 30, 365)),
    ({"RAW_GLACIER_DAYS": "0", "RAW_EXPIRE_DAYS": "7"}, (None, None, 7)),
])
def test_retention_settings_are_read(env, values):
    settings = Settings.from_env(env)
    assert (settings.tick_ttl_days, settings.raw_glacier_days, settings.raw_expire_days) == values


@pytest.mark.parametrize(("env", "message"), [
    ({"TICK_TTL_DAYS": "0"}, "TICK_TTL_DAYS=0 is out of range 1..36500"),
    ({"TICK_TTL_DAYS": "7d"}, "TICK_TTL_DAYS='7d' is not a whole number"),
    ({"RAW_GLACIER_DAYS": "-1"}, "RAW_GLACIER_DAYS=-1 is out of range 1..36500"),
    ({"RAW_EXPIRE_DAYS": "30"}, "RAW_EXPIRE_DAYS=30 must be greater than RAW_GLACIER_DAYS=90 (raw objects move to "
                                "Glacier first); set RAW_GLACIER_DAYS=0 to expire them without moving them"),
    ({"RAW_GLACIER_DAYS": "30", "RAW_EXPIRE_DAYS": "30"}, "RAW_EXPIRE_DAYS=30 must be greater than RAW_GLACIER_DAYS=30"),
])
def test_a_wrong_retention_value_fails_in_one_line_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert set(caught.value.variables) <= {"TICK_TTL_DAYS", "RAW_GLACIER_DAYS", "RAW_EXPIRE_DAYS"}


@pytest.mark.parametrize("days", [None, 3])
def test_the_functions_get_the_ttl_only_when_it_is_set(days):
    settings = Settings.from_env({"TICK_TTL_DAYS": str(days)} if days else {})
    value = FunctionEnvironment.of(settings, raw_bucket="raw", dlq_url="http://q", topic_arn="arn:t",
                                   partial_batch_response=True)
    written = value.environ()
    assert written.get("TICK_TTL_DAYS") == (str(days) if days else None)
    assert FunctionEnvironment.parse(written).tick_ttl_days == days


# -- expiry and horizon --------------------------------------------------------------------------


def test_an_item_expires_its_ttl_after_its_ticks_own_second():
    assert TTL.expires_at("2026-03-02T14:30:05.999Z") == epoch("2026-03-02T14:30:05.000Z") + DAY_SECONDS
    assert Retention.days(2) == Retention(2 * DAY_SECONDS)


def test_the_horizon_leaves_out_what_expires_within_the_margin():
    now = 1_780_000_000.5
    horizon = TTL.horizon(now)
    oldest_alive = datetime.fromtimestamp(int(now) + MARGIN_SECONDS + 1 - DAY_SECONDS, UTC)
    assert horizon == oldest_alive.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    alive, dead = horizon, (oldest_alive - timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert TTL.expires_at(alive) == int(now) + MARGIN_SECONDS + 1  # more than the margin left: used
    assert TTL.expires_at(dead) == int(now) + MARGIN_SECONDS and dead < horizon  # within it: gone
    assert now_for(horizon) // 1 == int(now) and TTL.horizon(now_for(horizon)) == horizon


# -- process-ticks -------------------------------------------------------------------------------


def at(second: int) -> str:
    return (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def record(second: int, price: str) -> RawRecord:
    return RawRecord(json.dumps({"symbol": "AAPL", "timestamp": at(second), "price": price}).encode())


def test_each_item_carries_its_expiry_and_a_tick_past_the_horizon_is_archived_only():
    records = [record(5, "10"), record(12, "11"), record(13, "12")]
    decision = decide(parse(records), Known(), window=3, threshold_percent=Decimal(5), prefix="raw-data",
                      retention=TTL, horizon=at(10))
    assert [(new.item["timestamp"], new.item[EXPIRY_ATTRIBUTE]) for new in decision.items] == [
        (at(12), epoch(at(12)) + DAY_SECONDS), (at(13), epoch(at(13)) + DAY_SECONDS)]
    # The expired tick is in the raw archive, and neither in the head nor in the average after it.
    [(_, _, lines)] = decision.objects.values()
    assert len(lines) == 3
    assert decision.heads == [Head("AAPL", at(13), (Decimal(11), Decimal(12)), whole=True)]
    assert decision.items[0].item["moving_average"] == Decimal(11)
    without = decide(parse(records), Known(), window=3, threshold_percent=Decimal(5), prefix="raw-data")
    assert len(without.items) == 3 and all(EXPIRY_ATTRIBUTE not in new.item for new in without.items)


def test_a_late_tick_reads_no_point_past_the_horizon_whether_it_is_deleted_yet_or_not():
    table = FakeTable()
    process_batch([record(s, str(100 + s)) for s in range(0, 20, 2)], table, FakeArchive(), FakeDeadLetters(),
                  window=5, threshold_percent=Decimal(5))
    late = parse([record(13, "1")])
    known = read(late, table, FakeArchive(), window=5, horizon=at(9))
    assert known.before["AAPL"] == [PricePoint(at(10), Decimal(110)), PricePoint(at(12), Decimal(112))]
    decision = decide(late, known, window=5, threshold_percent=Decimal(5), prefix="raw-data", retention=TTL,
                      horizon=at(9))
    # The average of the late tick: the points since the horizon only (without it: the four before).
    assert decision.items[0].item["moving_average"] == (Decimal(110 + 112 + 1) / 3).quantize(Decimal("0.000001"))
    assert decision.items[0].item["late"] is True


# -- trend-alerts --------------------------------------------------------------------------------


def stored(table: FakeTable, ticks) -> list[StoredTick]:
    process_batch([RawRecord(t.to_json().encode()) for t in ticks], table, FakeArchive(), FakeDeadLetters(),
                  window=5, threshold_percent=Decimal(5))
    return [StoredTick.from_item(table.items[(t.symbol, t.timestamp)]) for t in ticks]


def judged(table, batches, horizon, windows=None):
    alerts = []
    for batch in batches:
        alerts += alerts_for(batch, table, 5, 20, windows, horizon=horizon)
    return {(a.symbol, a.signal.value, a.timestamp) for a in alerts}


@pytest.mark.parametrize("warm", [False, True])
def test_once_old_ticks_are_past_the_horizon_the_alerts_are_those_of_the_series_since_it(warm):
    """The old ticks are still in the table (the reaper has not come) and, warm, in the window of the
    container: neither is used. The alerts of the new ticks are those of the series since the horizon,
    and from SMA_LONG ticks on exactly those without a TTL."""
    ticks = SyntheticMarket(["AAPL"], seed=3, start=START).series("AAPL", 240)
    old, new = ticks[:120], ticks[120:]
    table = FakeTable()
    windows = Windows(keep=80) if warm else None
    judged(table, [stored(table, old[start:start + 7]) for start in range(0, len(old), 7)], "", windows)
    batches = [stored(table, new[start:start + 7]) for start in range(0, len(new), 7)]
    assert batches[0][0].previous == old[-1].timestamp  # the new ticks chain onto the warm window

    ours = judged(table, batches, new[0].timestamp, windows)
    assert ours == expected_alerts(frame(new))
    whole = expected_alerts(frame(ticks))
    settled = new[20].timestamp  # from SMA_LONG ticks on, every window fits after the horizon
    assert {a for a in ours if a[2] >= settled} == {a for a in whole if a[2] >= settled}
    assert {a for a in whole if a[2] >= new[0].timestamp} != ours  # the planted series crosses at the edge
    # The same ticks judged again later, old ones reaped meanwhile: the same alerts.
    for timestamp in [t.timestamp for t in old]:
        del table.items[("AAPL", timestamp)]
    assert judged(table, batches, new[0].timestamp, Windows(keep=80) if warm else None) == ours


def test_within_the_ttl_the_alerts_are_exactly_those_without_one():
    ticks = SyntheticMarket(["AAPL", "MSFT"], seed=5, start=START).ticks(400)
    listed = list(ticks)
    table = FakeTable()
    batches = [stored(table, listed[start:start + 9]) for start in range(0, len(listed), 9)]
    horizon = TTL.horizon(epoch(listed[0].timestamp) + 3600)  # the oldest tick has a day less an hour to live
    assert judged(table, batches, horizon, Windows(keep=80)) == judged(table, batches, "") == expected_alerts(
        frame(listed))


def test_a_tick_past_the_horizon_is_not_judged():
    ticks = SyntheticMarket(["AAPL"], first_jump=3, start=START).series("AAPL", 5)
    table = FakeTable()
    batch = stored(table, ticks)
    assert judged(table, [batch], "")  # an anomaly at the fourth tick
    assert judged(table, [batch], ticks[4].timestamp) == set()


# -- init ----------------------------------------------------------------------------------------


def test_ttl_drift_names_the_attribute_before_and_after():
    assert ttl_drift(None, "expires_at") == ["ttl: off -> expires_at"]
    assert ttl_drift("expires_at", None) == ["ttl: expires_at -> off"]
    assert ttl_drift("gone_at", "expires_at") == ["ttl: gone_at -> expires_at"]
    assert ttl_drift("expires_at", "expires_at") == ttl_drift(None, None) == []


def test_the_lifecycle_rules_cover_only_our_prefixes():
    rules = lifecycle(Settings.from_env({"RAW_EXPIRE_DAYS": "400"}))
    assert [rule.rule() for rule in rules] == [
        {"ID": "stockpipe-raw", "Filter": {"Prefix": "raw-data/"}, "Status": "Enabled",
         "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}], "Expiration": {"Days": 400}},
        {"ID": "stockpipe-athena-results", "Filter": {"Prefix": "athena-results/"}, "Status": "Enabled",
         "Expiration": {"Days": 7}},
    ]
    assert [rule.prefix for rule in lifecycle(Settings.from_env({"RAW_GLACIER_DAYS": "0"}))] == ["athena-results/"]


def test_lifecycle_drift_and_a_hand_made_rule_kept():
    wanted = lifecycle(Settings.from_env({}))
    assert lifecycle_drift(None, wanted) == ["lifecycle raw-data/: none -> Glacier after 90 days, kept",
                                             "lifecycle athena-results/: none -> no Glacier, deleted after 7 days"]
    current = [rule.rule() for rule in wanted]
    assert lifecycle_drift(current, wanted) == []
    changed = [{**current[0], "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, current[1]]
    assert lifecycle_drift(changed, wanted) == [
        "lifecycle raw-data/: Glacier after 30 days, kept -> Glacier after 90 days, kept"]
    theirs = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    assert lifecycle_drift([theirs, *current], wanted) == []
    assert lifecycle_rules([theirs, *changed], wanted) == [theirs, *current]
    # A rule of ours no longer wanted goes.
    assert lifecycle_drift(current, wanted[1:]) == ["lifecycle raw-data/: Glacier after 90 days, kept -> none"]
    assert Lifecycle.of({"ID": "x", "Filter": {"Prefix": "a/"}, "Status": "Disabled"}).prefix == "a/ (disabled)"
