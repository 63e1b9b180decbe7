"""When the bench's cheap looks at a running phase say it is done, and so worth reading in full."""

from bench.follow import FollowError
from bench.ledger import Layout
from bench.runner import START
from bench.watch import Goal, Look, Watch
from stockpipe.producer.sources import SyntheticMarket

MARKET = SyntheticMarket(("AAPL", "MSFT"), seed=5, start=START)
TICKS = list(MARKET.ticks(10))  # AAPL at 0, 2, ..., 8; MSFT at 1, 3, ..., 9


class Stream:
    def __init__(self, position):
        self.position, self.asked = position, 0

    def end_position(self):
        self.asked += 1
        return self.position


class Heads:
    def __init__(self, heads=None, missing=False):
        self.heads, self.missing, self.closed = heads or {}, missing, False

    def read(self):
        if self.missing:
            raise FollowError("BatchGetItem: HTTP 400", "ResourceNotFoundException")
        return dict(self.heads)

    def close(self):
        self.closed = True


class Inbox:
    def __init__(self, arrived):
        self.count = arrived

    def arrived(self):
        return self.count


class Logs:
    def __init__(self, records):
        self.records, self.polls = records, 0

    def poll(self):
        self.polls += 1


def test_ours_is_done_once_every_head_is_at_its_last_tick_the_stream_is_complete_and_the_alerts_are_in():
    goal = Goal(low=0, high=10, base=0, alerts=3)
    stream, heads = Stream(8), Heads({"AAPL": TICKS[8].timestamp, "MSFT": TICKS[7].timestamp})
    watch = Watch(Layout(MARKET), stream, heads, Inbox(3))
    look = watch.look(goal, all_sent=False)
    assert (look.writing, look.reached, look.position, stream.asked) == (9, False, None, 0)
    look = watch.look(goal, all_sent=True)
    assert (look.writing, look.reached, look.position) == (9, False, 8)
    assert not look.done(goal, received=3)

    heads.heads["MSFT"] = TICKS[9].timestamp  # the last batch is being written
    look = watch.look(goal, all_sent=True)
    assert (look.writing, look.reached, look.position) == (10, True, 8)
    assert not look.done(goal, received=3)  # its items are not all in the stream yet
    stream.position = 10
    look = watch.look(goal, all_sent=True)
    assert look.done(goal, received=3)
    assert not look.done(goal, received=2)


def test_a_complete_stream_makes_ours_done_even_if_a_head_lags():
    goal = Goal(low=0, high=10, base=0, alerts=0)
    heads = Heads({"AAPL": TICKS[8].timestamp, "MSFT": TICKS[7].timestamp})
    look = Watch(Layout(MARKET), Stream(10), heads).look(goal, all_sent=True)
    assert (look.writing, look.reached) == (9, True)
    assert look.done(goal, received=0)


def test_a_later_phase_counts_the_stream_from_the_records_read_before_it():
    goal = Goal(low=4, high=10, base=5, alerts=0)  # one tick of the earlier phases was stored twice
    heads = Heads({"AAPL": TICKS[8].timestamp, "MSFT": TICKS[9].timestamp})
    assert not Watch(Layout(MARKET), Stream(10), heads).look(goal, all_sent=True).done(goal, 0)
    assert Watch(Layout(MARKET), Stream(11), heads).look(goal, all_sent=True).done(goal, 0)


def test_a_flow_without_heads_is_followed_by_its_stream_s_length_and_its_last_function_s_log():
    goal = Goal(low=0, high=10, base=0, alerts=0)
    stream, logs = Stream(6), Logs(0)
    watch = Watch(Layout(MARKET), stream, logs=logs)
    look = watch.look(goal, all_sent=True, last_stage=logs)
    assert (look.writing, look.reached, look.logged, logs.polls) == (6, False, 0, 0)  # no log read yet
    stream.position = 10
    look = watch.look(goal, all_sent=True, last_stage=logs)
    assert (look.reached, logs.polls) == (True, 1)
    assert not look.done(goal, 0)  # the last function has not passed every record
    logs.records = 10
    assert watch.look(goal, all_sent=True, last_stage=logs).done(goal, 0)


def test_without_a_heads_table_the_stream_s_length_tells_our_progress():
    heads = Heads(missing=True)
    watch = Watch(Layout(MARKET), Stream(4), heads)
    look = watch.look(Goal(0, 10, 0, 0), all_sent=False)
    assert (look.writing, look.reached, watch.heads, heads.closed) == (4, False, None, True)


def test_an_engine_whose_iterators_do_not_tell_is_read_in_full_once_everything_is_sent():
    goal = Goal(0, 10, 0, 0)
    watch = Watch(Layout(MARKET), Stream(None))
    assert not watch.look(goal, all_sent=False).done(goal, 0)
    assert watch.look(goal, all_sent=True).done(goal, 0)


def test_a_look_of_nothing_is_not_done():
    assert not Look().done(Goal(0, 1, 0, 0), 0)
