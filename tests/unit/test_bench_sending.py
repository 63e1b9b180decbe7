"""The bench streams its series into PutRecords of at most 500 and writes down when each tick went."""

import json

from bench.ledger import Layout, TickLedger
from bench.runner import START
from bench.sending import send_ticks
from stockpipe.producer.sources import SyntheticMarket

MARKET = SyntheticMarket(("AAPL", "MSFT"), seed=3, start=START)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_as_fast_as_possible_sends_every_tick_in_calls_of_at_most_500_in_order():
    calls = []
    clock = FakeClock()

    def put(chunk):
        calls.append(chunk)
        clock.now += 0.01  # each call takes 10 ms

    ledger = TickLedger(Layout(MARKET), 1201)
    finished = send_ticks(MARKET.ticks(), put, ledger, 0, 1201, None, clock=clock, wait=clock.wait)
    assert [len(chunk) for chunk in calls] == [500, 500, 201]
    sent = [json.loads(record.data) for chunk in calls for record in chunk]
    assert [(t["symbol"], t["timestamp"]) for t in sent] == [(t.symbol, t.timestamp) for t in MARKET.ticks(1201)]
    assert ledger.sent_count == 1201
    assert ledger.sent[0] == ledger.sent[499] == 1000.0  # when its call began
    assert ledger.sent[500] == 1000.01
    assert finished == 1000.03


def test_a_paced_run_sends_what_is_due_in_small_chunks():
    calls = []
    clock = FakeClock()
    ledger = TickLedger(Layout(MARKET), 50)
    send_ticks(MARKET.ticks(), lambda chunk: calls.append((clock.now, len(chunk))), ledger, 0, 50, 100.0,
               clock=clock, wait=clock.wait)
    assert sum(size for _, size in calls) == 50
    assert max(size for _, size in calls) <= 11  # 100 ticks/s, a chunk every 0.1 s
    assert calls[-1][0] - calls[0][0] >= 0.4  # spread over about half a second, not sent at once
    assert all(earlier <= later for earlier, later in zip(ledger.sent, ledger.sent[1:], strict=False))


def test_a_later_phase_fills_its_own_place_in_the_ledger():
    ledger = TickLedger(Layout(MARKET), 30, phases=(0, 10))
    ticks = MARKET.ticks()
    clock = FakeClock()
    send_ticks(ticks, lambda chunk: None, ledger, 0, 10, None, clock=clock, wait=clock.wait)
    send_ticks(ticks, lambda chunk: None, ledger, 10, 20, None, clock=clock, wait=clock.wait)
    assert ledger.sent_per_phase == [10, 20]
