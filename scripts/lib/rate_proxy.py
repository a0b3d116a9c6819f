"""A counting TCP proxy on loopback: forwards every byte to an upstream server (moto) unchanged, so SigV4 still
verifies, and counts the bytes of each direction per 100 ms, as the wire sees them. The tests and
bench/bwlimit measure a bandwidth limit here, on the far side of the sender's sockets.

Usage: python3 rate_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--port-file FILE] --stats-file FILE
Writes the port to --port-file once it accepts connections, and rewrites --stats-file (atomically, every 200 ms
and at exit) as JSON: {"start": UNIX_TIME_OF_BUCKET_0, "bucket": 0.1, "up": [bytes...], "down": [bytes...]}, where
"up" is client to server (uploads) and "down" server to client (downloads).

With --outage-file FILE, the proxy plays a network outage while FILE exists: every open connection is cut (both
sockets shut down mid-transfer) and new connections are closed as soon as they are accepted; when FILE is removed
it forwards again. The spool sender's tests cut the line this way and check that nothing is lost.

Standard library only; two threads per connection. Ends on SIGTERM or SIGINT.
"""
import argparse
import json
import os
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

BUCKET = 0.1


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.start = time.time()
        self.up = []
        self.down = []

    def add(self, series, count):
        index = int((time.time() - self.start) / BUCKET)
        with self.lock:
            target = self.up if series == "up" else self.down
            while len(target) <= index:
                target.append(0)
            target[index] += count

    def write(self, path):
        with self.lock:
            document = {"start": self.start, "bucket": BUCKET, "up": list(self.up), "down": list(self.down)}
        temporary = path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(document, handle)
        os.replace(temporary, path)


def pump(source, target, counter, series):
    try:
        while True:
            data = source.recv(256 * 1024)
            if not data:
                break
            counter.add(series, len(data))
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


class Outage:
    """Whether the line is cut (FILE exists), and the open connections to cut when it is."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.open = set()

    def active(self):
        return self.path is not None and os.path.exists(self.path)

    def track(self, sock):
        with self.lock:
            self.open.add(sock)

    def forget(self, sock):
        with self.lock:
            self.open.discard(sock)

    def watch(self, stop):
        while not stop.wait(0.05):
            if not self.active():
                continue
            with self.lock:
                doomed = list(self.open)
            for sock in doomed:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def serve(client, upstream, counter, outage):
    if outage.active():
        client.close()
        return
    try:
        server = socket.create_connection(upstream)
    except OSError:
        client.close()
        return
    for sock in (client, server):
        outage.track(sock)
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads = [threading.Thread(target=pump, args=(client, server, counter, "up"), daemon=True),
               threading.Thread(target=pump, args=(server, client, counter, "down"), daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sock in (client, server):
        outage.forget(sock)
    client.close()
    server.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--stats-file", required=True)
    parser.add_argument("--outage-file")
    arguments = parser.parse_args()
    parts = urlsplit(arguments.upstream)
    upstream = (parts.hostname, parts.port or 80)

    counter = Counter()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((arguments.host, arguments.port))
    listener.listen(64)
    stop = threading.Event()

    def finish(*_):
        stop.set()
        try:
            listener.close()
        except OSError:
            pass

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)

    def writer():
        while not stop.wait(0.2):
            counter.write(arguments.stats_file)

    threading.Thread(target=writer, daemon=True).start()
    outage = Outage(arguments.outage_file)
    threading.Thread(target=outage.watch, args=(stop,), daemon=True).start()
    counter.write(arguments.stats_file)
    port = listener.getsockname()[1]
    if arguments.port_file:
        with open(arguments.port_file + ".tmp", "w") as handle:
            handle.write(str(port))
        os.replace(arguments.port_file + ".tmp", arguments.port_file)
    print(f"listening on http://{arguments.host}:{port}", flush=True)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except OSError:
            break
        threading.Thread(target=serve, args=(client, upstream, counter, outage), daemon=True).start()
    counter.write(arguments.stats_file)


if __name__ == "__main__":
    main()
