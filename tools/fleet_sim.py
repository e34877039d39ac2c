#!/usr/bin/env python3
"""The share of deliveries that find a usable cache entry, per host alone and fleet-wide.

A week of N deliveries over D destinations with Zipf popularity (exponent s), each
message given to one of H hosts at random, a TTL of at least the week, caches empty at
the start. A destination with probability p gets K ~ Poisson(N p) deliveries; a host
sees Poisson(N p / H) of them. Every delivery but a cache's first contact finds an entry,
so the expected number of early deliveries from one cache seeing Poisson(l) is
l - 1 + exp(-l). Exact in expectation; --monte-carlo checks it by drawing the stream.

    python3 tools/fleet_sim.py                 # the table of docs/FLEET.md
    python3 tools/fleet_sim.py --monte-carlo   # the same, drawn (smaller, slower)
"""

import argparse
import math
import random


def weights(d, s):
    w = [1.0 / (k + 1) ** s for k in range(d)]
    t = sum(w)
    return [x / t for x in w]


def expected_share(n, d, s, hosts):
    """(each host alone, fleet-wide) shares of deliveries that go early."""
    alone = fleet = 0.0
    for p in weights(d, s):
        lam = n * p
        fleet += lam - 1 + math.exp(-lam)
        per = lam / hosts
        alone += hosts * (per - 1 + math.exp(-per))
    return alone / n, fleet / n


def drawn_share(n, d, s, hosts, seed=1):
    rnd = random.Random(seed)
    cum, t = [], 0.0
    for p in weights(d, s):
        t += p
        cum.append(t)
    seen_host, seen_fleet = set(), set()
    alone = fleet = 0
    import bisect

    for _ in range(n):
        dest = min(bisect.bisect_left(cum, rnd.random()), d - 1)
        h = rnd.randrange(hosts)
        alone += (h, dest) in seen_host
        fleet += dest in seen_fleet
        seen_host.add((h, dest))
        seen_fleet.add(dest)
    return alone / n, fleet / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deliveries", type=int, default=10_000_000)
    ap.add_argument("--destinations", type=int, default=1_000_000)
    ap.add_argument("--monte-carlo", action="store_true")
    ap.add_argument(
        "--cases",
        default="1:1.0,10:1.0,50:1.0,50:0.8",
        help="hosts:zipf pairs, comma-separated",
    )
    a = ap.parse_args()
    n, d = a.deliveries, a.destinations
    if a.monte_carlo and n > 1_000_000:
        n, d = n // 10, d // 10
    print(f"deliveries={n} destinations={d}")
    print("| hosts | Zipf s | each host alone | fleet-wide |")
    print("|---|---|---|---|")
    for case in a.cases.split(","):
        h, s = case.split(":")
        h, s = int(h), float(s)
        f = drawn_share if a.monte_carlo else expected_share
        alone, fleet = f(n, d, s, h)
        print(f"| {h} | {s} | {alone:.2f} | {fleet:.2f} |")


if __name__ == "__main__":
    main()
