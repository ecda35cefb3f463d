"""The two live-call benchmarks end to end in their smallest form. Timings are the benchmarks'
business; these prove that they run the real stack and report what they measured."""

from __future__ import annotations

import re

from tests.commands import run_bench


def test_first_frame_benchmark_times_each_call_from_the_press_to_a_frame_on_the_page() -> None:
    lines = run_bench("bench.first_frame", "--rounds", "2")
    rounds = [
        re.fullmatch(
            r"(warm-up|round \d): case (\d+) ms, offer (\d+) ms, connected (\d+) ms, "
            r"first frame (\d+) ms \(640 px wide\)",
            line,
        )
        for line in lines
        if line.startswith(("warm-up", "round"))
    ]
    assert len(rounds) == 3 and all(rounds), lines
    for found in rounds:
        assert found is not None
        case, offer, connected, frame = (int(found.group(i)) for i in range(2, 6))
        # In the order a call happens: the case, then the unit's call offered, connected, a frame.
        assert 0 < case <= offer <= connected <= frame
    final = re.fullmatch(
        r"p50_ms=(\d+) p95_ms=(\d+) max_ms=(\d+) case_p50_ms=\d+ offer_p50_ms=\d+ connected_p50_ms=\d+", lines[-1]
    )
    assert final is not None, lines[-1]
    assert int(final.group(1)) <= int(final.group(2)) <= int(final.group(3))


def test_call_capacity_benchmark_counts_the_frames_sent_recorded_and_shown() -> None:
    quick = ["--steps", "1", "--window", "2", "--warmup", "0.5", "--unit-idle", "1", "--unit-window", "1"]
    lines = run_bench("bench.call_capacity", *quick)
    unit = next(line for line in lines if line.startswith("one simulated unit"))
    assert re.search(r"in a call \d+ % of a core, up to \d+ MB resident", unit), unit
    step = re.search(
        r"1 calls: server \d+ % of a core .* frames sent (\d+), recorded (\d+) .* shown to the consoles (\d+)",
        "\n".join(lines),
    )
    assert step is not None, lines
    sent, recorded, shown = (int(step.group(i)) for i in (1, 2, 3))
    # Two seconds of a 15 fps call: frames were sent, read back from the recording, and decoded
    # by the console; nothing is counted that was not sent.
    assert sent >= 15
    assert 0 < recorded <= sent
    assert 0 < shown <= sent
    final = re.fullmatch(
        r"calls=(\d+) cpu_pct_per_call=(\S+) dropped_pct=(\S+) unit_cpu_pct=\d+ unit_rss_mb=\d+", lines[-1]
    )
    assert final is not None, lines[-1]
    assert final.group(1) in ("0", "1")
