"""The project's one wait helper and one health probe (stockpipe/waiting.py), and AWS errors as the
adapters hand them over (AwsError): what each says, without an engine."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from email.message import Message

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from stockpipe.aws.errors import AwsError, error_code, explain, translated, unsupported
from stockpipe.aws.regions import known_regions
from stockpipe.errors import StockpipeError
from stockpipe.waiting import WaitTimeout, probe, wait_until

# -- wait_until --------------------------------------------------------------------------------


class Clock:
    """A clock that moves only when the helper sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_answer_comes_back_as_soon_as_it_is_true():
    clock, answers = Clock(), iter([None, 0, {"ready": True}])
    assert wait_until(lambda: next(answers), what="x", timeout=10, interval=2, clock=clock,
                      sleep=clock.sleep) == {"ready": True}
    assert clock.slept == [2, 2]


def test_a_wait_that_times_out_names_what_it_waited_for_after_a_last_look_at_the_deadline():
    clock, looks = Clock(), []

    def never() -> bool:
        looks.append(clock.now)
        return False

    with pytest.raises(WaitTimeout, match=r"^function process-ticks not ready after 5s$") as raised:
        wait_until(never, what="function process-ticks", timeout=5, interval=2, clock=clock, sleep=clock.sleep)
    assert looks == [0, 2, 4, 5]  # the last look is at the deadline, not an interval past it
    assert raised.value.last is False and isinstance(raised.value, StockpipeError)


def test_no_time_to_wait_is_one_look():
    clock, looks = Clock(), []
    with pytest.raises(WaitTimeout):
        wait_until(lambda: looks.append(1), what="lab 2", timeout=0, interval=2, clock=clock, sleep=clock.sleep)
    assert looks == [1] and clock.slept == []


def test_progress_hears_each_answer_that_is_not_the_one_and_the_time_left():
    clock, heard = Clock(), []
    answers = iter(["", "", "done"])
    wait_until(lambda: next(answers), what="x", timeout=10, interval=3, clock=clock, sleep=clock.sleep,
               progress=lambda answer, left: heard.append((answer, left)))
    assert heard == [("", 10), ("", 7)]


def test_a_check_gives_up_early_by_raising():
    def exited() -> bool:
        raise RuntimeError("the engine exited with code 1")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(exited, what="x", timeout=10, interval=1)


# -- probe -------------------------------------------------------------------------------------


class Answer(io.BytesIO):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(body)
        self.status = status


def test_the_probe_returns_the_health_document_or_none(monkeypatch):
    answers: dict[str, Answer | OSError] = {
        "http://e/ok": Answer(200, b'{"edition": "light"}'), "http://e/list": Answer(200, b"[1]"),
        "http://e/text": Answer(200, b"not json"), "http://e/moved": Answer(204, b'{"a": 1}'),
        "http://e/down": urllib.error.HTTPError("http://e/down", 503, "unavailable", Message(), None),
        "http://e/none": ConnectionRefusedError(111, "Connection refused"),
    }
    asked: list[tuple[str, float]] = []

    def urlopen(url: str, timeout: float) -> Answer:
        asked.append((url, timeout))
        answer = answers[url]
        if isinstance(answer, OSError):
            raise answer
        return answer

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert probe("http://e/ok", timeout=1.5) == {"edition": "light"}
    assert asked == [("http://e/ok", 1.5)]
    for url in ("http://e/list", "http://e/text", "http://e/moved", "http://e/down", "http://e/none"):
        assert probe(url) is None, url


# -- AWS errors --------------------------------------------------------------------------------


def refused(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetQueueUrl")


def test_an_answer_refusing_a_call_becomes_ours_with_everything_it_said():
    original = refused("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    with pytest.raises(AwsError) as raised, translated():
        raise original
    error = raised.value
    assert isinstance(error, StockpipeError) and error.__cause__ is original
    assert str(error) == str(original)  # botocore's words, for the messages that print them
    assert (error.kind, error.code, error.status, error.operation, error.answered) == (
        "ClientError", "AWS.SimpleQueueService.NonExistentQueue", 400, "GetQueueUrl", True)
    assert error.reason == "The specified queue does not exist." and error_code(error) == error.code
    assert explain(error, "real AWS in eu-west-1", "eu-west-1") == (
        "The specified queue does not exist. (in real AWS in eu-west-1): run 'stockpipe init', and check that "
        "AWS_REGION=eu-west-1 matches")


def test_no_answer_at_all_becomes_ours_and_is_explained_as_before():
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/")
    error = AwsError.of(down)
    assert (error.kind, error.answered, error.code, error.status) == ("EndpointConnectionError", False, "", None)
    where = "the AWS engine at AWS_ENDPOINT_URL=http://127.0.0.1:4566"
    assert explain(error, where, "us-east-1") == explain(down, where, "us-east-1") == (
        f"cannot reach {where}: start it (stockpipe emulator, or make up) or fix AWS_ENDPOINT_URL")


def test_an_engine_without_the_api_is_still_told_apart():
    assert unsupported(AwsError.of(refused("InvalidAction", "Unknown action GetDatabases")))
    assert not unsupported(AwsError.of(refused("AccessDenied", "no")))


def test_the_regions_botocore_knows_are_read_offline():
    regions = known_regions()
    assert {"us-east-1", "eu-west-1"} <= regions and "us-east-7" not in regions
