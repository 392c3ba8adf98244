"""What the observability exporters cost: the local socket path with and without them.

    python bench/exporters.py [--seconds 40] [--connections 50] [--sample 0.01]
                              [--variants control,metrics,offloaded,traced_api,...]
    python bench/exporters.py --micro [--calls 20000] [--rounds 6]

Socket mode runs, one after the other, a ``genapi serve`` process per variant of the same
gateway (``echo(n: int)``, as in ``gateway.py``) under closed-loop load from ``wsload.py``.
Inside each gateway a thread **attaches the exporters during even wall-clock seconds and
detaches them during odd ones**; the load generator counts the calls completed in each
second. Every "on" second is compared with the mean of the "off" seconds around it, in
the same process a second apart, so that the VM's slow and fast spells (seconds long,
often ±30 %) hit both sides alike. The variants:

* **control** — nothing to toggle: the difference between even and odd seconds of a
  gateway without exporters, i.e. the noise floor of the method;
* **observer** — a request observer that does nothing (``add_request_observer``): what a
  callback per request costs;
* **metrics** — a ``PrometheusExporter`` (as ``Gateway(metrics=True)``: requests counted
  inline by the executor, other events offloaded); **inline** — the same with
  ``offload=False`` (on this path: no difference, no other events are emitted);
* **traced_api** — metrics and a ``RequestTracer`` (offloaded, as ``tracing=True``)
  without an OpenTelemetry SDK (no-op spans: genapi's own share of tracing);
* **traced_sampled** — metrics and tracing with the OpenTelemetry SDK (a
  ``BatchSpanProcessor`` whose exporter discards the spans) and ``sample_rate=--sample``;
* **traced_sdk** — the same recording every span.

``--micro`` measures the added cost per call in-process instead (``Executor.execute`` in a
loop, no socket): offloaded updates against inline ones, and each exporter alone.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import call_frame, free_port, process, run_load
from machine import StealMeter

BENCH_APP = """
import os, threading, time
import genapi
from genapi.observability import PrometheusExporter, RequestTracer

bench = genapi.Service("bench")

@bench.function()
async def echo(n: int) -> int:
    return n

def install_sdk():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor, SpanExporter, SpanExportResult)

    class Discard(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)

def toggled():
    variant = os.environ["GENAPI_BENCH_VARIANT"]
    if variant in ("traced_sampled", "traced_sampled_inline", "traced_sdk"):
        install_sdk()
    gateway = genapi.Gateway([bench])
    exporters = []
    if variant == "observer":
        class NullObserver:  # the executor's observer mechanism alone, doing nothing
            def attach(self):
                gateway.executor.add_request_observer(self.observe)
            def detach(self):
                gateway.executor.remove_request_observer(self.observe)
            def observe(self, request, response, known, duration_us):
                pass
        exporters.append(NullObserver())
    elif variant != "control":
        exporters.append(PrometheusExporter(executor=gateway.executor, stats=gateway.stats,
                                            offload=variant != "inline"))
    if variant.startswith("traced"):
        rate = SAMPLE if variant.startswith("traced_sampled") else 1.0
        exporters.append(RequestTracer(executor=gateway.executor, sample_rate=rate,
                                       offload=not variant.endswith("_inline")))

    cpu_log = open(os.environ["GENAPI_BENCH_CPU_LOG"], "a", buffering=1)

    def toggle():
        while True:
            time.sleep(1.0005 - time.time() % 1)
            second = int(time.time())
            # The CPU this process used up to the start of this second (all its threads).
            cpu_log.write(f"{second} {time.process_time()}\\n")
            on = second % 2 == 0
            for exporter in exporters:
                exporter.attach() if on else exporter.detach()

    threading.Thread(target=toggle, daemon=True).start()
    return gateway
"""

LABELS = {"control": "control (nothing toggled)", "observer": "a no-op request observer",
          "metrics": "metrics",
          "inline": "metrics, inline", "traced_api": "metrics+tracing, API only",
          "traced_sampled": "metrics+tracing, SDK sampled",
          "traced_sampled_inline": "the same, spans made inline",
          "traced_sdk": "metrics+tracing, SDK 100%"}


@dataclass
class Seconds:
    """Calls completed, and their latencies, per wall-clock second."""

    counts: Counter[int] = field(default_factory=Counter)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)  # gateway CPU seconds used in it

    def read_cpu(self, path: str) -> None:
        """The gateway's CPU time per second, from the lines its toggle thread wrote."""
        with open(path) as log:
            marks = [(int(a), float(b)) for a, b in (line.split() for line in log)]
        for (second, start), (following, end) in itertools.pairwise(marks):
            if following == second + 1:
                self.cpu[second] = end - start

    def cpu_per_call(self, on: bool) -> float:
        """Gateway CPU µs per call over the full on (or off) seconds."""
        full = [s for s in sorted(self.counts)[2:-1]
                if (s % 2 == 0) == on and s in self.cpu and self.counts[s]]
        return (sum(self.cpu[s] for s in full) * 1e6
                / max(sum(self.counts[s] for s in full), 1))

    def ratios(self) -> list[float]:
        """Each full "on" (even) second against the mean of the two seconds around it."""
        full = sorted(self.counts)[2:-1]  # not the warm-up, nor the last, partial second
        out = []
        for second in full:
            if second % 2 == 0 and second - 1 in full and second + 1 in full:
                around = (self.counts[second - 1] + self.counts[second + 1]) / 2
                out.append(self.counts[second] / around)
        return out

    def summary(self, on: bool) -> tuple[float, float, float]:
        """calls/s, p50 and p99 latency (ms) over the full on (or off) seconds."""
        full = [s for s in sorted(self.counts)[2:-1] if (s % 2 == 0) == on]
        latencies = sorted(ms for s in full for ms in self.latencies.get(s, []))
        rate = sum(self.counts[s] for s in full) / max(len(full), 1)
        if not latencies:
            return rate, 0.0, 0.0
        return (rate, latencies[len(latencies) // 2],
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))])


def load(url: str, args: argparse.Namespace) -> Seconds:
    """Closed-loop load for ``args.seconds``, counted per second (a send follows an answer)."""
    make = call_frame("bench", "echo")
    last_sent: dict[int, float] = {}
    seconds = Seconds()

    def counting(index: int, seq: int) -> bytes:
        now = time.time()
        previous = last_sent.get(index)
        if previous is not None:  # this connection's previous call just completed
            second = int(now)
            seconds.counts[second] += 1
            seconds.latencies.setdefault(second, []).append((now - previous) * 1000)
        last_sent[index] = now
        return make(index, seq)

    window = argparse.Namespace(connections=args.connections, duration=args.seconds,
                                warmup=0.0)
    run_load(url, window, counting)
    return seconds


def socket_bench(args: argparse.Namespace) -> None:
    variants = (args.variants.split(",") if args.variants
                else ["control", "metrics", "traced_api", "traced_sampled", "traced_sdk"])
    unknown = set(variants) - set(LABELS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    print(f"python {platform.python_version()}, {args.connections} connections, "
          f"{args.seconds:.0f} s per variant, exporters on in even seconds and off in odd "
          f"ones; {os.cpu_count()} cores shared by every process (load generator included); "
          f"sampled = sample_rate {args.sample:g}")
    print(f"{'variant':<30} {'off calls/s':>11} {'on calls/s':>11} {'on/off':>7} "
          f"{'[quartiles]':>16}   {'p50 ms off/on':>13}   {'p99 ms off/on':>13}"
          f"   {'cpu us/call off/on':>18}")
    with tempfile.TemporaryDirectory() as tmp, StealMeter() as steal:
        with open(os.path.join(tmp, "bench_exporters.py"), "w") as handle:
            handle.write(BENCH_APP.replace("SAMPLE", repr(args.sample)))
        for variant in variants:
            cpu_log = os.path.join(tmp, f"cpu-{variant}.log")
            env = {**os.environ, "PYTHONPATH": tmp, "GENAPI_BENCH_VARIANT": variant,
                   "GENAPI_BENCH_CPU_LOG": cpu_log}
            port = free_port()
            with process([sys.executable, "-m", "genapi", "serve", "bench_exporters:toggled",
                          "--port", str(port), "--log-level", "warning"], env, port):
                seconds = load(f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0", args)
            seconds.read_cpu(cpu_log)
            cpu_off, cpu_on = seconds.cpu_per_call(on=False), seconds.cpu_per_call(on=True)
            ratios = sorted(r - 1 for r in seconds.ratios())
            q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
            off, on = seconds.summary(on=False), seconds.summary(on=True)
            print(f"{LABELS[variant]:<30} {off[0]:>11,.0f} {on[0]:>11,.0f} "
                  f"{statistics.median(ratios):>+7.1%} {f'[{q1:+.1%} {q3:+.1%}]':>16}"
                  f"   {off[1]:>6.2f}/{on[1]:<6.2f}   {off[2]:>6.2f}/{on[2]:<6.2f}"
                  f"   {cpu_off:>5.1f}/{cpu_on:<5.1f} {cpu_off / cpu_on - 1:>+6.1%}")
    print("on/off: the median, over the on seconds, of (calls in it) / (mean of the seconds "
          "around it) - 1")
    print("cpu us/call: gateway process CPU time per call, off/on; the last column is the "
          "calls/s a CPU-bound gateway loses with the exporters on (off/on - 1)")
    print(steal.describe())


# -- in-process, per call ------------------------------------------------------------------

def _sdk_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider


async def _per_call_us(setups: dict[str, Callable[[Any], list[Any]] | None], calls: int,
                       rounds: int) -> dict[str, float]:
    """The best time per call of each variant, measured in alternation (``rounds`` times)."""
    from genapi import Executor, Registry, Request, Service
    from genapi.telemetry.events import Telemetry

    svc = Service("bench")

    @svc.function()
    async def echo(n: int) -> int:
        return n

    request = Request(request_id="r", service="bench", request_type="echo", args={"n": 1})
    executors: dict[str, Executor] = {}
    exporters: list[Any] = []
    for name, setup in setups.items():
        registry = Registry(telemetry=Telemetry())  # one telemetry each: no cross-talk
        registry.add_service(svc)
        executors[name] = executor = Executor(registry)
        exporters += setup(executor) if setup is not None else []
        for _ in range(2000):
            await executor.execute(request)
    best = dict.fromkeys(setups, float("inf"))
    for _ in range(rounds):  # the best of the rounds: the least disturbed by the machine
        for name, executor in executors.items():
            started = time.perf_counter()
            for _ in range(calls):
                await executor.execute(request)
            best[name] = min(best[name], (time.perf_counter() - started) / calls * 1e6)
    for exporter in exporters:
        exporter.close()
    for executor in executors.values():
        await executor.aclose()
    return best


def micro_bench(args: argparse.Namespace) -> None:
    from genapi.observability import PrometheusExporter, RequestTracer

    setups: dict[str, Callable[[Any], list[Any]] | None] = {
        "no exporters": None,
        "metrics": lambda ex: [PrometheusExporter(executor=ex)],
        "metrics over telemetry": lambda ex: [PrometheusExporter(ex.telemetry)],
        "the same, inline": lambda ex: [PrometheusExporter(ex.telemetry, offload=False)],
        "tracing, API only": lambda ex: [RequestTracer(executor=ex)],
        "tracing, SDK 100%": lambda ex: [RequestTracer(executor=ex,
                                                       tracer_provider=_sdk_provider())],
        f"tracing, SDK {args.sample:.0%}": lambda ex: [RequestTracer(
            executor=ex, tracer_provider=_sdk_provider(), sample_rate=args.sample)],
        f"tracing, SDK {args.sample:.0%}, over telemetry": lambda ex: [RequestTracer(
            ex.telemetry, tracer_provider=_sdk_provider(), sample_rate=args.sample)],
        f"metrics + tracing SDK {args.sample:.0%}": lambda ex: [
            PrometheusExporter(executor=ex),
            RequestTracer(executor=ex, tracer_provider=_sdk_provider(),
                          sample_rate=args.sample)],
    }
    print(f"python {platform.python_version()}, Executor.execute in a loop, variants in "
          f"alternation, best of {args.rounds} x {args.calls:,} calls each")
    with StealMeter() as steal:
        costs = asyncio.run(_per_call_us(setups, args.calls, args.rounds))
    base = costs["no exporters"]
    for name, cost in costs.items():
        extra = "" if name == "no exporters" else f"  ({cost - base:+5.2f} us)"
        print(f"{name:<28} {cost:6.2f} us/call{extra}")
    print(steal.describe())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0, help="load per variant")
    parser.add_argument("--sample", type=float, default=0.01,
                        help="RequestTracer sample_rate of the traced_sampled variant")
    parser.add_argument("--variants", help="comma-separated, from: " + ", ".join(LABELS))
    parser.add_argument("--micro", action="store_true", help="in-process cost per call")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per --micro window")
    parser.add_argument("--rounds", type=int, default=6, help="--micro windows per variant")
    args = parser.parse_args()
    if args.micro:
        micro_bench(args)
    else:
        socket_bench(args)


if __name__ == "__main__":
    main()
