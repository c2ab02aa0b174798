"""Reads a file from a Kubo-RPC node in the segment schedule of our `cat`
spans (src/ipfs/stream.rs), with a client that does nothing with the bytes,
and prints the seconds it took: what the node's side of a cold read through
the mount costs when the reader costs nothing (scripts/bench-ipfs.sh).

The schedule mirrors stream.rs: a first `cat?offset=&length=` of
SEGMENT_BYTES (8 MiB), each later one SEGMENT_GROWTH (4) times the one before
up to SEGMENT_MAX (128 MiB), the next asked for as soon as the current one starts
being read (once its headers came). Change both together. (The mount's
spans start after the first few blocks, which it reads by block/get; this
client starts at offset 0.)

Usage: span_schedule.py API_URL CID SIZE_BYTES
Prints: SECONDS BYTES_READ
"""

import http.client
import sys
import threading
import time
import urllib.parse

MIB = 1 << 20
# stream.rs: SEGMENT_BYTES, SEGMENT_GROWTH and SEGMENT_MAX.
SEGMENT_BYTES = 8 * MIB
SEGMENT_GROWTH = 4
SEGMENT_MAX = 128 * MIB
# Bytes per read of an answer: large, so the client's own cost stays small.
READ_BYTES = 4 * MIB


def segments(size):
    """(offset, length) of each request, in order."""
    out, offset, seg = [], 0, SEGMENT_BYTES
    while offset < size:
        length = min(seg, size - offset)
        out.append((offset, length))
        offset += length
        seg = min(seg * SEGMENT_GROWTH, SEGMENT_MAX)
    return out


class Request(threading.Thread):
    """One `cat` request, sent at once; `response` once the node answers."""

    def __init__(self, host, port, cid, offset, length):
        super().__init__(daemon=True)
        self.args = (host, port, cid, offset, length)
        self.response, self.error = None, None
        self.start()

    def run(self):
        host, port, cid, offset, length = self.args
        try:
            conn = http.client.HTTPConnection(host, port, timeout=120)
            conn.request("POST", f"/api/v0/cat?arg={cid}&offset={offset}&length={length}")
            self.response = conn.getresponse()
            if self.response.status != 200:
                self.error = f"HTTP {self.response.status} for offset {offset}"
        except OSError as e:
            self.error = str(e)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    api = urllib.parse.urlparse(sys.argv[1])
    cid, size = sys.argv[2], int(sys.argv[3])
    plan = segments(size)
    start = time.monotonic()
    pending = [Request(api.hostname, api.port, cid, *plan[0])]
    total, next_index = 0, 1
    while pending:
        request = pending.pop(0)
        request.join()
        if request.error:
            sys.exit(f"span_schedule: {request.error}")
        if next_index < len(plan):
            # The current answer has started (its headers came): ask for the next.
            pending.append(Request(api.hostname, api.port, cid, *plan[next_index]))
            next_index += 1
        while True:
            chunk = request.response.read(READ_BYTES)
            if not chunk:
                break
            total += len(chunk)
    print(f"{time.monotonic() - start:.3f} {total}")
    if total != size:
        sys.exit(f"span_schedule: read {total} bytes, expected {size}")


if __name__ == "__main__":
    main()
