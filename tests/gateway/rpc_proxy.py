#!/usr/bin/env python3
"""A proxy in front of a real Kubo-RPC node, for tests/ipfs_stream.rs.

It forwards every request (method, path, query, body) to --upstream and
sends the node's answer back, so the mount talks to the real node; what it
adds is a log and two faults a real node does not make on demand:

  --tamper-cat CID:OFFSET   in every `cat` answer for the file CID, the byte
                            at file offset OFFSET is flipped (the answer's
                            own `offset` query is taken into account);
  --tamper-block CID        in every `block/get` answer for CID, the first
                            byte is flipped;
  --stall-cat CID:BYTES     every `cat` answer for the file CID sends its
                            headers and its first BYTES bytes, then nothing
                            (the connection stays open): a node that hangs
                            mid-answer;
  --drip-export SECS        every `dag/export` answer is sent in 16 pieces,
                            SECS seconds apart: a slow but steady node.

--log FILE gets one line per request: `ENDPOINT ARG STATUS QUERY` (ENDPOINT is
the path after /api/v0/, e.g. `cat` or `block/get`).
Prints `listening PORT` once it accepts connections (127.0.0.1, a free port).
No third-party modules.
"""

import argparse
import http.client
import http.server
import sys
import threading
import time
import urllib.parse

# How long a stalled answer holds its connection: longer than any test's I/O
# timeout, so the client, not the proxy, gives up.
STALL_SECS = 600


def parse_fault(text):
    cid, _, n = text.rpartition(":")
    return cid, int(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tamper-cat", action="append", default=[])
    ap.add_argument("--tamper-block", action="append", default=[])
    ap.add_argument("--stall-cat", action="append", default=[])
    ap.add_argument("--drip-export", type=float, default=0.0)
    args = ap.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    tamper = dict(parse_fault(t) for t in args.tamper_cat)
    stall = dict(parse_fault(t) for t in args.stall_cat)
    log_lock = threading.Lock()

    def log(line):
        with log_lock:
            with open(args.log, "a") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-length")}
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            url = urllib.parse.urlsplit(self.path)
            endpoint = url.path.removeprefix("/api/v0/")
            query = urllib.parse.parse_qs(url.query)
            arg = query.get("arg", [""])[0]
            log(f"{endpoint} {arg} {resp.status} {url.query}")
            start = int(query.get("offset", ["0"])[0])
            if endpoint == "cat" and resp.status == 200 and arg in tamper:
                pos = tamper[arg] - start
                if 0 <= pos < len(data):
                    data = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
            if endpoint == "block/get" and resp.status == 200 and arg in args.tamper_block and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.getheader("Content-Type") or "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                if endpoint == "cat" and resp.status == 200 and arg in stall:
                    self.wfile.write(data[: stall[arg]])
                    self.wfile.flush()
                    time.sleep(STALL_SECS)
                    self.close_connection = True
                    return
                if endpoint == "dag/export" and args.drip_export > 0:
                    piece = max(1, -(-len(data) // 16))
                    for at in range(0, len(data), piece):
                        self.wfile.write(data[at : at + piece])
                        self.wfile.flush()
                        time.sleep(args.drip_export)
                    return
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client stopped reading (a span it closed early): normal.
                self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
