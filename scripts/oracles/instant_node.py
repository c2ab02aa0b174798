"""A Kubo-RPC stand-in that answers at once, for the IPFS read benchmark
(scripts/bench-ipfs.sh): what a cold read through the mount costs when the
node costs nothing, i.e. the ceiling of our own side.

It holds one file's DAG in memory, from a CAR the real node exported
(`dag/export`), and the file's bytes, and answers the two calls a cold read
makes: `POST /api/v0/block/get?arg=CID` (the block's bytes, from the CAR)
and `POST /api/v0/cat?arg=CID&offset=&length=` (the file's bytes; any CID
names the one file). The blocks are the real node's, so the mount checks
them as it would any node's. A stand-in, not a node: nothing else is
answered (404), and it serves only the file it was given.

Usage: instant_node.py CAR FILE PORT   (listens on 127.0.0.1:PORT until killed)
"""

import base64
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def varint(buf, i):
    """The unsigned varint at buf[i:] and the index after it."""
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def car_blocks(car):
    """The blocks of a CARv1, by binary CID (CIDv1 only, as `dag/export` of a
    CIDv1 DAG writes)."""
    header_len, i = varint(car, 0)
    i += header_len
    blocks = {}
    while i < len(car):
        section, i = varint(car, i)
        end = i + section
        j = i
        for _ in range(3):  # CID version, codec, multihash code
            _, j = varint(car, j)
        digest_len, j = varint(car, j)
        j += digest_len
        blocks[bytes(car[i:j])] = car[j:end]
        i = end
    return blocks


def cid_bytes(text):
    """The binary form of a base32 CIDv1 string (`b...`)."""
    if not text.startswith("b"):
        raise ValueError(f"not a base32 CIDv1: {text}")
    body = text[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def main():
    car_path, file_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(car_path, "rb") as f:
        blocks = car_blocks(memoryview(f.read()))
    with open(file_path, "rb") as f:
        data = memoryview(f.read())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out at once (Nagle would hold a small body
        # back until the client acknowledged the headers: 40 ms each).
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def answer(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            self.connection.sendall(body)

        def do_POST(self):
            url = urllib.parse.urlparse(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                if url.path == "/api/v0/block/get":
                    block = blocks.get(cid_bytes(query["arg"]))
                    return self.answer(200, block) if block is not None else self.answer(500)
                if url.path == "/api/v0/cat":
                    offset = min(int(query.get("offset", 0)), len(data))
                    length = min(int(query.get("length", len(data))), len(data) - offset)
                    return self.answer(200, data[offset : offset + length])
            except (KeyError, ValueError):
                return self.answer(400)
            return self.answer(404)

    print(f"instant node: {len(blocks)} blocks, {len(data)} bytes, port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
