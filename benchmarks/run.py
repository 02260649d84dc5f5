"""Benchmarks of the pizza shop: real broker, services as real processes, numbers printed.

    python -m benchmarks            # the default run (each benchmark well under 2 minutes)
    python -m benchmarks --quick    # tiny sizes: does everything still work end to end?
    python -m benchmarks --only kitchen --orders 2000 --batches 5

A local Kafka broker is started on free ports (temporary data) unless
KAFKA_BOOTSTRAP_SERVERS names a cluster to use. Numbers are medians with
their spread; the machine is printed with them. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import kitchen, primitives, rebuild, webapp
from benchmarks.harness import Distribution, Environment, cpu_probe_line, machine_lines, median_and_spread, ms

SECTIONS = ("kitchen", "webapp", "rebuild", "kafka")


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition: a smoke run")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this benchmark (repeatable)")
    g = parser.add_argument_group("kitchen pipeline")
    g.add_argument("--orders", type=int, default=1000, help="orders per measured burst (default 1000)")
    g.add_argument("--batches", type=int, default=3, help="measured bursts per replica count (default 3)")
    g.add_argument(
        "--single", type=int, default=20, help="orders sent one at a time, each delivered before the next (default 20)"
    )
    g.add_argument("--replicas", type=int_list, default=[1, 2], help="replicas per kitchen service (default 1,2)")
    g.add_argument(
        "--rates",
        type=int_list,
        default=[20, 50, 100, 200, 400, 800, 1600, 3200],
        help="orders/s of the latency-vs-load curve, 1 replica, until saturated (default 20,...,3200)",
    )
    g.add_argument(
        "--paced-seconds",
        type=float,
        default=10.0,
        help="seconds per paced rate (default 10; the first, the reference rate, at least 30 unless --quick)",
    )
    g.add_argument(
        "--no-references",
        action="store_true",
        help="skip the reference pipelines (bare transactional relay, naive per-message loop)",
    )
    g.add_argument(
        "--no-broker-warm-up",
        action="store_true",
        help="measure on the broker as started (the first pipeline measured then pays for its JIT warm-up)",
    )
    g = parser.add_argument_group("webapp")
    g.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    g.add_argument("--web-orders", type=int, default=2000, help="at most this many orders in total (default 2000)")
    g.add_argument("--web-seconds", type=float, default=40.0, help="and for at most this long (default 40)")
    g = parser.add_argument_group("status rebuild")
    g.add_argument(
        "--rebuild-orders",
        type=int_list,
        default=[1000, 5000],
        help="log sizes in orders (each with 3 status events) to rebuild from (default 1000,5000)",
    )
    g.add_argument("--rebuild-repeats", type=int, default=3, help="fresh starts per size (default 3)")
    g = parser.add_argument_group("Kafka round trips")
    g.add_argument("--round-trips", type=int, default=200, help="sequential sends and transactions (default 200)")
    parser.add_argument(
        "--log-format",
        default="json",
        choices=("json", "console"),
        help="the services' LOG_FORMAT (default json, as in containers)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the broker's and services' logs here (default: a temporary directory, "
        "removed after a successful run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.batches, args.single = 20, 1, 3
        args.rates, args.paced_seconds = [20, 50], 2.0
        args.clients, args.web_orders, args.web_seconds = 4, 24, 20.0
        args.rebuild_orders, args.rebuild_repeats = [50], 1
        args.round_trips = 10
        args.no_broker_warm_up = True
    return args


def spread(values: list[float], fmt) -> str:
    if not values:
        return "-"
    median, low, high = median_and_spread(values)
    if len(values) == 1:
        return fmt(median)
    return f"{fmt(median)} ({fmt(low)}-{fmt(high)})"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [f"\n{title}", "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for r in rows:
        out.append(
            "  ".join(
                (str(c).ljust(w) if i == 0 else str(c).rjust(w)) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(out)


def dist_cells(d: Distribution) -> list[str]:
    return [ms(d.p50), ms(d.p95), ms(d.p99), ms(d.max)]


def replicas_label(n: int) -> str:
    return f"{n} replica{'s' if n > 1 else ''} per service"


def pipeline_label(r: kitchen.KitchenResult) -> str:
    return f"{r.label}, {replicas_label(r.replicas)}" if r.label == kitchen.OURS else r.label


def kitchen_table(results: list[kitchen.KitchenResult]) -> str:
    rows = []
    for r in results:
        e2e = r.distribution("end-to-end")
        rows.append(
            [
                f"burst, {pipeline_label(r)}",
                f"{r.orders_per_batch}x{len(r.throughput)}",
                spread(r.throughput, lambda x: f"{x:.0f}"),
                *dist_cells(e2e),
                ms(Distribution.of(r.visible).p50),
                " / ".join(ms(r.distribution(s).p50) for s in ("assemble", "bake", "delivery")),
            ]
        )
    for r in results:
        one = r.single
        if one is None:
            continue
        rows.append(
            [
                f"one at a time, {pipeline_label(r)}",
                str(len(one.end_to_end)),
                "-",
                *dist_cells(one.distribution("end-to-end")),
                ms(Distribution.of(one.visible).p50),
                " / ".join(ms(one.distribution(s).p50) for s in ("assemble", "bake", "delivery")),
            ]
        )
    cpu_rows = [
        [
            f"CPU ms per order, {pipeline_label(r)}",
            *(f"{r.cpu_ms_per_order(name):.2f}" for name in ("assemble", "bake", "delivery", "broker")),
        ]
        for r in results
    ]
    paced_rows = [
        [
            pipeline_label(r),
            f"{step.offered:.0f}",
            f"{step.achieved:.0f}",
            str(step.visible.n),
            *dist_cells(step.visible),
        ]
        for r in results
        for step in r.paced
    ]
    # The reference rate (the curve's first), per stage: where each pipeline's tail is.
    stage_rows = [
        [pipeline_label(r), stage, *dist_cells(dist)]
        for r in results
        if r.paced
        for stage, dist in r.paced[0].stages.items()
    ]
    rss_rows = [
        [pipeline_label(r), when, *(f"{rss.get(name, float('nan')):.0f}" for name in ("assemble", "bake", "delivery"))]
        for r in results
        for when, rss in (
            (f"after the bursts ({r.orders_before_curve} orders)", r.rss_mib),
            (f"after the curve ({r.total_orders} orders)", r.rss_after_curve_mib),
        )
        if rss
    ]
    return "\n".join(
        [
            table(
                "1. Kitchen pipeline (KITCHEN_TIME_SCALE=0): orders on pizza-ordered until 400 read committed; "
                "latencies per order in ms (e2e from ce_time; visible = 400 read here)",
                [
                    "scenario",
                    "orders",
                    "orders/s med (min-max)",
                    "e2e p50",
                    "p95",
                    "p99",
                    "max",
                    "visible p50",
                    "stage p50 asm/bake/dlv",
                ],
                rows,
            ),
            table(
                "   CPU time during the bursts (/proc utime+stime; all replicas of a service together)",
                ["", "assemble", "bake", "delivery", "broker"],
                cpu_rows,
            ),
            table(
                "   Paced orders: visible latency (ordered -> 400 read committed, ms) against the offered rate; "
                "the curve stops once saturated",
                ["pipeline", "offered/s", "delivered/s", "orders", "p50", "p95", "p99", "max"],
                paced_rows,
            ),
            table(
                "   The reference rate (the first above) between the steps, ms: 200->300 = assemble's commit, "
                "bake's fetch and handling; 300->400 = bake's and delivery's; 400->read = delivery's commit, "
                "this reader's fetch",
                ["pipeline", "between", "p50", "p95", "p99", "max"],
                stage_rows,
            ),
            table(
                "   Peak RSS per process (VmHWM, MiB; the largest replica): after the bursts, and after the latency "
                "curve, whose last rate is past saturation (a backlog; every order's bounded state kept)",
                ["pipeline", "when", "assemble", "bake", "delivery"],
                rss_rows,
            ),
            ratio_lines(results),
        ]
    )


def ratio_lines(results: list[kitchen.KitchenResult]) -> str:
    """This project (1 replica per service) against the reference pipelines of the same run."""

    def median_rate(label: str) -> float | None:
        for r in results:
            if r.label == label and r.replicas == 1 and r.throughput:
                return median_and_spread(r.throughput)[0]
        return None

    ours = median_rate(kitchen.OURS)
    lines = ["\n   Burst throughput, this project (1 replica per service) against the references of this run:"]
    for label in (kitchen.TRANSACTIONAL_RELAY, kitchen.NAIVE_LOOP):
        ref = median_rate(label)
        if ours and ref:
            lines.append(f"   ours / {label}: {ours:.0f} / {ref:.0f} = {ours / ref:.2f}")
    return "\n".join(lines) if len(lines) > 1 else ""


def webapp_table(r: webapp.WebResult) -> str:
    rows = []
    for kind, label in (("post", "webapp POST /api/orders"), ("get", "webapp GET /api/orders/<id>")):
        d = r.distribution(kind)
        rows.append([label, str(d.n), f"{r.rate(kind):.1f}", *dist_cells(d)])
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "none"
    return table(
        f"2. Webapp JSON API, {r.clients} clients, each POST then GET; {r.elapsed:.1f} s measured; errors: {errors}",
        ["request", "count", "req/s", "p50 ms", "p95", "p99", "max"],
        rows,
    )


def rebuild_table(results: list[rebuild.RebuildResult]) -> str:
    rows = []
    for r in results:
        rate = [r.offsets / s for s in r.rebuild if s > 0]
        cpu_per_offset = [cpu / r.offsets * 1e6 for cpu in r.cpu_s if r.offsets]
        rows.append(
            [
                f"status rebuild, {r.target_orders} orders written{r.note}",
                f"{r.ordered_offsets}+{r.status_offsets}",
                str(len(r.ready)),
                spread(r.http_up, lambda x: f"{x:.2f}"),
                spread(r.ready, lambda x: f"{x:.2f}"),
                spread(r.rebuild, lambda x: f"{x:.2f}"),
                spread(rate, lambda x: f"{x:.0f}"),
                spread(cpu_per_offset, lambda x: f"{x:.1f}"),
                spread(r.peak_rss_mib, lambda x: f"{x:.0f}"),
            ]
        )
    return table(
        "3. Status rebuild: fresh pizza-status until /readyz 200 (seconds from exec; median (min-max))",
        [
            "scenario",
            "offsets ordered+status",
            "starts",
            "http up s",
            "ready s",
            "rebuild s",
            "offsets/s",
            "CPU us/offset",
            "peak RSS MiB",
        ],
        rows,
    )


def primitives_table(r: primitives.PrimitiveResult) -> str:
    rows = [[label, str(d.n), *dist_cells(d), ms(d.min)] for label, d in r.rows()]
    return table(
        "4. Kafka round trips with the services' client settings, one at a time (ms)",
        ["round trip", "count", "p50", "p95", "p99", "max", "min"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kafka_common.logging import configure_logging

    configure_logging("benchmark", level="WARNING")  # the library's clients used here log at info
    sections = args.only or list(SECTIONS)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="pizza-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    print(
        f"# pizza-shop benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"command: python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
        flush=True,
    )
    env = Environment(log_dir=log_dir, log_format=args.log_format)
    output: list[str] = []
    ok = False
    try:
        env.start()
        output += machine_lines(env.kafka_version)
        output.append(
            f"services: LOG_FORMAT={args.log_format}, one process each unless stated; "
            f"load generator in this process on the same cores"
        )
        for line in output:
            print(line, flush=True)
        if "kitchen" in sections:
            results = []
            warmup = min(20, args.orders)
            # Ours with 1 replica and the bare transactional relay run side by side, their bursts
            # in turn: the ratio between them is the number that matters, and a broker that
            # drifts over a run (JIT, caches) then weighs on both alike.
            groups: list[tuple[list[tuple[str, int, tuple[float, ...]]], int]] = []
            for n in args.replicas:
                rates = tuple(args.rates) if n == 1 else ()
                if n == 1 and not args.no_references:
                    groups.append(([("ours", 1, rates), ("transactional", 1, tuple(args.rates[:1]))], args.batches))
                    groups.append(([("naive", 1, tuple(args.rates[:1]))], 1))  # ~100 orders/s: one burst
                else:
                    groups.append(([("ours", n, rates)], args.batches))
            if not args.no_broker_warm_up:
                print(
                    f"# kitchen: warming the broker up ({kitchen.BROKER_WARM_UP_BURST} orders at once, then "
                    f"{kitchen.BROKER_WARM_UP_RATE:.0f}/s for {kitchen.BROKER_WARM_UP_SECONDS:.0f} s, then "
                    f"{kitchen.BROKER_WARM_UP_SINGLE} one at a time, bare relay) ...",
                    flush=True,
                )
                kitchen.warm_up_broker(env)
            for pipelines, batches in groups:
                described = " and ".join(f"{mode} ({n} replica(s) per step)" for mode, n, _ in pipelines)
                turns = ", bursts in turn" if len(pipelines) > 1 else ""
                print(f"# kitchen, {described}: {batches} x {args.orders} orders{turns} ...", flush=True)
                t = time.perf_counter()
                results += kitchen.run_side_by_side(
                    env,
                    pipelines,
                    args.orders,
                    batches,
                    warmup=warmup,
                    single=args.single,
                    paced_seconds=args.paced_seconds,
                    reference_seconds=(
                        args.paced_seconds if args.quick else max(args.paced_seconds, kitchen.REFERENCE_RATE_SECONDS)
                    ),
                )
                print(f"#   done in {time.perf_counter() - t:.0f} s", flush=True)
            output.append(kitchen_table(results))
            print(output[-1], flush=True)
        if "webapp" in sections:
            print(
                f"# webapp: {args.clients} clients, up to {args.web_orders} orders or {args.web_seconds:.0f} s ...",
                flush=True,
            )
            t = time.perf_counter()
            result = webapp.run(env, args.clients, args.web_orders, args.web_seconds)
            print(f"#   done in {time.perf_counter() - t:.0f} s", flush=True)
            output.append(webapp_table(result))
            print(output[-1], flush=True)
        if "rebuild" in sections:
            print(
                f"# rebuild: log sizes {args.rebuild_orders} orders, {args.rebuild_repeats} start(s) each ...",
                flush=True,
            )
            t = time.perf_counter()
            rebuilds = rebuild.run(env, args.rebuild_orders, args.rebuild_repeats)
            print(f"#   done in {time.perf_counter() - t:.0f} s", flush=True)
            output.append(rebuild_table(rebuilds))
            print(output[-1], flush=True)
        if "kafka" in sections:
            print(f"# Kafka round trips: {args.round_trips} of each ...", flush=True)
            t = time.perf_counter()
            round_trips = primitives.run(env, args.round_trips)
            print(f"#   done in {time.perf_counter() - t:.0f} s", flush=True)
            output.append(primitives_table(round_trips))
            print(output[-1], flush=True)
        ok = True
    finally:
        env.stop()
        if ok:
            print(cpu_probe_line("at the end"), flush=True)
        print(
            f"\n# total {time.perf_counter() - began:.0f} s; logs: "
            f"{log_dir if (args.log_dir or not ok) else 'removed (use --log-dir to keep them)'}",
            flush=True,
        )
        if ok and args.log_dir is None:
            shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
