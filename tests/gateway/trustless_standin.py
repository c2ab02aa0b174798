#!/usr/bin/env python3
"""A stand-in for an IPFS trustless gateway, for tests/ipfs_gateway.rs.

js-ipfs 0.66.1 (our Kubo-RPC node) serves no trustless gateway responses
(no ?format=raw, no ?format=car), so the tests run against this server
instead. It is a stand-in, not a gateway: it holds the blocks of the CAR
files given with --car (made by the node's `dag/export`), and answers

  GET /ipfs/CID?format=raw                 the block's bytes
      (application/vnd.ipld.raw), 404 when it lacks the block;
  GET /ipfs/CID?format=car&dag-scope=entity&entity-bytes=FROM:TO
      a CARv1 (application/vnd.ipld.car, root CID) holding, depth first,
      the file's root and every UnixFS node and leaf whose bytes overlap
      FROM..=TO (TO may be `*`): the blocks a client needs to verify that
      range (IPIP-402). With --no-car it answers 400 instead, as a gateway
      without CAR support does.

--tamper CID (repeatable) flips one byte of that block in every answer.
--log FILE gets one line per request: `raw CID STATUS` or
`car CID FROM:TO STATUS BLOCKS` (BLOCKS: the CIDs sent, comma-separated).
Prints `listening PORT` once it accepts connections (127.0.0.1, a free port).
No third-party modules: the CAR, dag-pb and UnixFS framing are read here.
"""

import argparse
import base64
import http.server
import sys
import threading
import urllib.parse

RAW = 0x55
DAG_PB = 0x70


def read_varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def cid_len(buf, pos):
    """Length of the binary CID at buf[pos:]."""
    if buf[pos] == 0x12 and buf[pos + 1] == 0x20:  # CIDv0: a bare sha2-256 multihash
        return 34
    start = pos
    _, pos = read_varint(buf, pos)  # version
    _, pos = read_varint(buf, pos)  # codec
    _, pos = read_varint(buf, pos)  # hash function
    n, pos = read_varint(buf, pos)  # digest length
    return pos + n - start


def codec_of(cid):
    if len(cid) == 34 and cid[0] == 0x12:
        return DAG_PB
    _, pos = read_varint(cid, 0)
    codec, _ = read_varint(cid, pos)
    return codec


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(text):
    n = 0
    for ch in text:
        n = n * 58 + B58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def cid_from_text(text):
    if text.startswith("Qm"):
        return b58decode(text)
    if text.startswith("b"):
        s = text[1:].upper()
        return base64.b32decode(s + "=" * (-len(s) % 8))
    if text.startswith("z"):
        return b58decode(text[1:])
    raise ValueError("unsupported CID text " + text)


def cid_text(cid):
    if len(cid) == 34 and cid[0] == 0x12:
        n = int.from_bytes(cid, "big")
        out = ""
        while n:
            n, r = divmod(n, 58)
            out = B58[r] + out
        return out
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


def read_car(path):
    """Blocks of a CARv1 file: {binary CID: bytes}."""
    data = open(path, "rb").read()
    hlen, pos = read_varint(data, 0)
    pos += hlen
    blocks = {}
    while pos < len(data):
        n, pos = read_varint(data, pos)
        section = data[pos : pos + n]
        pos += n
        c = cid_len(section, 0)
        blocks[bytes(section[:c])] = bytes(section[c:])
    return blocks


def pb_fields(buf):
    """(field number, wire type, value) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            value = buf[pos : pos + n]
            pos += n
        else:
            raise ValueError("unexpected protobuf wire type %d" % wire)
        yield field, wire, value


def file_node(cid, block):
    """(inline data length, [(child CID, byte size)]) of a UnixFS file block."""
    if codec_of(cid) == RAW:
        return len(block), []
    links, data = [], b""
    for field, _, value in pb_fields(block):
        if field == 2:
            link = [f for f in pb_fields(value)]
            links.append(next(bytes(v) for f, _, v in link if f == 1))
        elif field == 1:
            data = value
    inline, sizes = 0, []
    for field, wire, value in pb_fields(data):
        if field == 2:
            inline = len(value)
        elif field == 4 and wire == 0:
            sizes.append(value)
        elif field == 4 and wire == 2:  # packed blocksizes
            pos = 0
            while pos < len(value):
                v, pos = read_varint(value, pos)
                sizes.append(v)
    return inline, list(zip(links, sizes))


class Gateway:
    def __init__(self, blocks, tamper, car, log):
        self.blocks = blocks
        self.tamper = tamper
        self.car = car
        self.log_path = log
        self.lock = threading.Lock()

    def block(self, cid):
        data = self.blocks.get(cid)
        if data is not None and cid in self.tamper:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        return data

    def log(self, line):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(line + "\n")

    def entity_blocks(self, root, first, last):
        """Depth first: the nodes and leaves of the file `root` over first..=last."""
        out = []

        def walk(cid, start, depth):
            data = self.blocks.get(cid)
            if data is None or depth > 64:
                return
            out.append(cid)
            inline, children = file_node(cid, data)
            pos = start + inline
            for child, size in children:
                end = pos + size  # exclusive
                if end > first and (last is None or pos <= last):
                    walk(child, pos, depth + 1)
                pos = end

        walk(root, 0, 0)
        return out

    def car_bytes(self, root, cids):
        root_field = b"\x00" + root
        header = (
            b"\xa2\x65roots\x81\xd8\x2a"
            + (b"\x58" + bytes([len(root_field)]))
            + root_field
            + b"\x67version\x01"
        )
        parts = [varint(len(header)), header]
        for cid in cids:
            data = self.block(cid)
            parts += [varint(len(cid) + len(data)), cid, data]
        return b"".join(parts)


def handler_for(gw):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, ctype="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            name = url.path[len("/ipfs/") :] if url.path.startswith("/ipfs/") else ""
            try:
                cid = cid_from_text(name)
            except Exception:
                return self.answer(400, b"bad CID")
            fmt = query.get("format", [""])[0]
            accept = self.headers.get("Accept", "")
            if fmt == "car" or "application/vnd.ipld.car" in accept:
                scope = query.get("dag-scope", ["all"])[0]
                rng = query.get("entity-bytes", ["0:*"])[0]
                if not gw.car or scope != "entity":
                    gw.log("car %s %s 400 -" % (name, rng))
                    return self.answer(400, b"format=car is not supported here")
                if cid not in gw.blocks:
                    gw.log("car %s %s 404 -" % (name, rng))
                    return self.answer(404, b"block not found")
                a, b = rng.split(":")
                cids = gw.entity_blocks(cid, int(a), None if b == "*" else int(b))
                gw.log("car %s %s 200 %s" % (name, rng, ",".join(cid_text(c) for c in cids)))
                return self.answer(200, gw.car_bytes(cid, cids), "application/vnd.ipld.car; version=1")
            data = gw.block(cid)
            gw.log("raw %s %d" % (name, 404 if data is None else 200))
            if data is None:
                return self.answer(404, b"block not found")
            return self.answer(200, data, "application/vnd.ipld.raw")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--car", action="append", default=[])
    p.add_argument("--tamper", action="append", default=[])
    p.add_argument("--no-car", action="store_true")
    p.add_argument("--log")
    args = p.parse_args()
    blocks = {}
    for path in args.car:
        blocks.update(read_car(path))
    tamper = {cid_from_text(t) for t in args.tamper}
    gw = Gateway(blocks, tamper, not args.no_car, args.log)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(gw))
    server.daemon_threads = True
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
