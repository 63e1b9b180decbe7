"""`make bench` arguments (`python -m bench`): what each option turns into, and the mistakes refused in one line."""

from pathlib import Path

import pytest

from bench.__main__ import build_parser
from bench.options import BenchOptions, OptionsError, bench_symbols
from stockpipe.settings import Settings


def resolve(*argv: str, settings: Settings | None = None) -> BenchOptions:
    return BenchOptions.from_args(build_parser().parse_args(list(argv)), settings or Settings())


def test_defaults_are_a_quick_run_at_full_speed_on_the_settings():
    options = resolve()
    assert (options.ticks, options.rate, options.symbols) == (3000, None, ("AAPL", "MSFT", "AMZN"))
    assert options.environment() == {}  # batch size and stream mode as the settings say
    assert (options.ceiling_ticks, options.compare_naive, options.soak) == (3000, False, False)
    assert options.out == Path(".stockpipe/bench")
    assert options.timeout == 300


def test_every_option_is_read():
    options = resolve("--ticks", "1000000", "--rate", "2500", "--symbols", "AAPL,nvda", "--batch-size", "1000",
                      "--shards", "4", "--compare-naive", "--out", "/tmp/b", "--json", "--timeout", "900")
    assert options.ticks == 1_000_000
    assert options.rate == 2500
    assert options.symbols == ("AAPL", "NVDA")
    assert options.environment() == {"KINESIS_BATCH_SIZE": "1000", "STREAMS_BATCH_SIZE": "1000",
                                     "STREAM_MODE": "PROVISIONED", "STREAM_SHARDS": "4"}
    assert (options.ceiling_ticks, options.naive_ticks) == (50_000, 2000)  # both capped
    assert options.out == Path("/tmp/b")
    assert options.timeout == 900


def test_a_number_of_symbols_means_that_many_generated_ones():
    assert bench_symbols("3", ()) == ("S001", "S002", "S003")
    assert len(bench_symbols("100", ())) == 100
    assert bench_symbols("1500", ())[-1] == "S1500"
    assert bench_symbols(None, ("AAPL",)) == ("AAPL",)


def test_the_soak_pushes_100000_ticks_unless_told_and_measures_at_the_demo_rate():
    options = resolve("--soak", settings=Settings(producer_rate=20.0))
    assert (options.soak, options.ticks, options.soak_rate, options.soak_seconds) == (True, 100_000, 20.0, 25.0)
    assert options.soak_ticks == 500
    assert resolve("--soak", "--ticks", "5000", "--soak-seconds", "10").soak_ticks == 100


def test_naive_ticks_ask_for_the_naive_flow():
    options = resolve("--ticks", "500", "--naive-ticks", "300")
    assert (options.compare_naive, options.naive_ticks) == (True, 300)
    assert resolve("--ticks", "500", "--compare-naive").naive_ticks == 500


@pytest.mark.parametrize(("argv", "message"), [
    (("--ticks", "0"), "--ticks 0"),
    (("--rate", "0"), "--rate 0"),
    (("--batch-size", "20000"), "--batch-size 20000"),
    (("--shards", "0"), "--shards 0"),
    (("--symbols", "0"), "--symbols 0"),
    (("--symbols", " , "), "--symbols is empty"),
    (("--timeout", "-1"), "--timeout -1"),
    (("--soak-seconds", "0"), "--soak-seconds 0"),
])
def test_impossible_values_are_refused_naming_the_option(argv, message):
    with pytest.raises(OptionsError, match=message):
        resolve(*argv)


def test_a_paced_run_is_measured_after_its_warm_up_and_a_burst_has_none() -> None:
    from rich.console import Console

    from bench.runner import WARMUP_SECONDS, Bench

    settings = Settings()
    paced = Bench(settings, BenchOptions.resolve(settings, ticks=5000, rate=1000), Console(quiet=True))
    assert [(p.name, p.ticks, p.rate) for p in paced.our_phases()] == [
        ("warmup", round(1000 * WARMUP_SECONDS), 1000), ("run", 5000, 1000)]
    burst = Bench(settings, BenchOptions.resolve(settings, ticks=5000), Console(quiet=True))
    assert [(p.name, p.ticks, p.rate) for p in burst.our_phases()] == [("run", 5000, None)]


def test_the_ceiling_goes_at_the_same_pace_as_ours_except_in_a_burst_or_a_soak() -> None:
    from rich.console import Console

    from bench.runner import WARMUP_SECONDS, Bench

    settings = Settings()

    def ceiling(**options: object) -> list[tuple[str, int, float | None]]:
        bench = Bench(settings, BenchOptions.resolve(settings, **options), Console(quiet=True))  # type: ignore[arg-type]
        return [(p.name, p.ticks, p.rate) for p in bench.ceiling_phases()]

    assert ceiling(ticks=5000, rate=1000) == [("warmup", round(1000 * WARMUP_SECONDS), 1000), ("run", 5000, 1000)]
    assert ceiling(ticks=5000) == [("run", 5000, None)]
    assert ceiling(ticks=5000, rate=1000, soak=True) == [("run", 5000, None)]


def test_the_figures_judge_the_run_after_a_warm_up_and_the_push_of_a_soak() -> None:
    from bench.figures import FlowRun, PhaseRun

    def flow(*names: str) -> FlowRun:
        run = FlowRun.__new__(FlowRun)
        run.phases = [PhaseRun(name, 1, None, started=0.0) for name in names]
        return run

    assert flow("warmup", "run").main == 1
    assert flow("warmup", "before", "push", "after").main == 2
    assert flow("run").main == 0


def test_make_bench_refuses_an_impossible_value_in_one_line_before_starting_anything(tmp_path, monkeypatch, capsys):
    from bench.__main__ import main

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setattr("signal.signal", lambda *args: None)  # this process's own handlers stay
    assert main(["--ticks", "0"]) == 1
    assert capsys.readouterr().err == "bench: error: --ticks 0: give at least 1 tick\n"


def test_make_bench_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args(["--help"])
    assert ended.value.code == 0
    text = capsys.readouterr().out
    for option in ("--ticks", "--rate", "--symbols", "--batch-size", "--shards", "--compare-naive", "--naive-ticks",
                   "--soak", "--soak-seconds", "--out", "--json", "--timeout"):
        assert option in text
