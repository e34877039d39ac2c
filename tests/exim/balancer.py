#!/usr/bin/env python3
"""A small layer-4 TCP balancer for tests: one listening address in front of several
backends, each accepted connection relayed to one backend chosen round-robin or at
random (a seeded generator, so a run can be repeated). A test tool, not a library
feature: it stands for the load balancer a large receiver puts in front of its MX hosts.

    balancer.py --listen PORT --backend HOST:PORT --backend HOST:PORT
                [--mode roundrobin|random] [--seed N]

Prints "listening PORT" once it accepts connections, then one line per connection
("conn N -> HOST:PORT"). Runs until SIGTERM or SIGINT. Python 3 standard library only.
"""

import argparse
import random
import signal
import socket
import sys
import threading


def pump(src, dst):
    """Copy src to dst until EOF or an error, then pass the half-close on."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relay(client, backend):
    try:
        server = socket.create_connection(backend, timeout=10)
    except OSError:
        client.close()
        return
    server.settimeout(None)
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pump, args=(server, client), daemon=True)
    t.start()
    pump(client, server)
    t.join(timeout=120)
    client.close()
    server.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--backend", action="append", required=True)
    ap.add_argument("--mode", choices=("roundrobin", "random"), default="roundrobin")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    backends = []
    for b in a.backend:
        host, port = b.rsplit(":", 1)
        backends.append((host, int(port)))
    rng = random.Random(a.seed)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.listen))
    lsock.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening %d" % a.listen, flush=True)
    n = 0
    try:
        while True:
            client, _ = lsock.accept()
            n += 1
            if a.mode == "roundrobin":
                backend = backends[(n - 1) % len(backends)]
            else:
                backend = rng.choice(backends)
            print("conn %d -> %s:%d" % (n, backend[0], backend[1]), flush=True)
            threading.Thread(target=relay, args=(client, backend), daemon=True).start()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
