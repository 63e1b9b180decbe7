"""Reading a process's CPU and memory from /proc, and which function a Lambda worker runs."""

import os

from bench.procs import BENCH, ProcessSampler, function_of, parse_process

STAT = ("4242 (python3 -m (x)) S 4200 4242 4242 0 -1 4194560 31166 0 0 0 250 50 0 0 20 0 3 0 1234 "
        "123456789 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0")
STATUS = "Name:\tpython3\nVmPeak:\t  300000 kB\nVmHWM:\t   204800 kB\nVmRSS:\t   102400 kB\nThreads:\t3\n"


def test_cpu_is_user_plus_system_time_and_memory_is_in_megabytes():
    reading = parse_process(4242, STAT, STATUS, ticks_per_second=100)
    assert reading.parent == 4200
    assert reading.cpu == 3.0  # (250 + 50) ticks at 100 per second
    assert reading.rss_mb == 100.0
    assert reading.peak_mb == 200.0


def test_a_worker_is_named_by_the_function_in_its_environment(tmp_path):
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "environ").write_bytes(b"PATH=/bin\0AWS_LAMBDA_FUNCTION_NAME=bench1-process-ticks\0HOME=/\0")
    (tmp_path / "78").mkdir()
    (tmp_path / "78" / "environ").write_bytes(b"PATH=/bin\0")
    assert function_of(77, tmp_path) == "bench1-process-ticks"
    assert function_of(78, tmp_path) is None
    assert function_of(79, tmp_path) is None  # gone


def test_the_process_tree_is_walked_only_every_few_samples(monkeypatch):
    sampler = ProcessSampler(os.getpid(), lambda name: None, rescan=3)
    walks = []
    monkeypatch.setattr(sampler, "_tree", lambda: walks.append(1) or [os.getpid()])
    sampler.sample(scan=False)  # nothing known yet: walked
    sampler.sample(scan=False)
    sampler.sample()  # an explicit sample (a phase's start or end) walks it
    assert len(walks) == 2
    assert sampler.figures()[BENCH].processes == 1  # here the "engine" is this process itself


def test_descendants_are_every_generation_below_a_process_and_only_those(tmp_path):
    from bench.procs import descendants

    tree = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1}  # pid -> parent
    for pid, parent in tree.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a (b)) S {parent} 0 0")
    (tmp_path / "self").mkdir()  # not a process
    assert sorted(descendants(10, tmp_path)) == [11, 12, 13]
    assert descendants(10, tmp_path, include_self=True)[0] == 10
    assert descendants(99, tmp_path, include_self=True) == []  # gone
