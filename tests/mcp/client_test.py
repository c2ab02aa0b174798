"""The MCP server end to end, driven by the official MCP Python SDK.

Run by tests/mcp_client.rs against a real mount (daemon running) with
/local (fs), /memory (memory) and /ro (fs, read-only). Environment:
  IKF_BIN        the ipfs-kit-fuse binary
  IKF_MNT        the mount point
  IKF_LOCAL      the backing directory of /local (files checked on disk)
  IKF_RO         the backing directory of /ro
  IKF_SOCKET     the daemon's control socket (to ask which methods it has)
  IKF_TRANSPORT  "stdio" (default), "http", or "ipfs" (the sync tools against
                 the node at IKF_IPFS_API; IKF_WANT_ROOT is the node's own CID
                 of /local/tree)
  IKF_BKT        (stdio) the backing directory of the bucket mount /bkt
                 (bucket "b1"); the bucket tools' results are checked
  IKF_IPFS_CAR   ipfs-car, the source of golden CIDs for the bucket checks
                 (when empty, CIDs are compared with `ipfs-kit-fuse cid`)
Every check is named; the script prints each result and exits 1 if any failed.
"""

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import traceback

from mcp import ClientSession, StdioServerParameters, stdio_client, types
from mcp.client.streamable_http import streamable_http_client

BIN = os.environ["IKF_BIN"]
MNT = os.environ["IKF_MNT"]
LOCAL = os.environ["IKF_LOCAL"]
RO = os.environ["IKF_RO"]
SOCKET = os.environ["IKF_SOCKET"]
TRANSPORT = os.environ.get("IKF_TRANSPORT", "stdio")

TOOLS = {
    "vfs_list_mounts", "vfs_mount", "vfs_unmount", "vfs_read", "vfs_read_many", "vfs_write",
    "vfs_edit", "vfs_copy", "vfs_move", "vfs_stat", "vfs_ls", "vfs_mkdir", "vfs_rmdir",
    "vfs_search", "vfs_stats", "vfs_sync_to_ipfs", "vfs_sync_from_ipfs", "bucket_list",
    "bucket_files", "bucket_find_cid", "bucket_snapshot", "bucket_snapshots", "bucket_prepare_car",
}
# Tool -> (socket method, arguments) for the tools backed by other features.
FEATURE_TOOLS = {
    "vfs_sync_to_ipfs": ("ipfs.push", {"path": "/local/dir"}),
    "vfs_sync_from_ipfs": ("ipfs.pull", {"cid": "bafkqaaa", "path": "/memory/pulled"}),
    "bucket_list": ("bucket.list", {}),
    "bucket_files": ("bucket.files", {"name": "nope"}),
    "bucket_find_cid": ("bucket.find_cid", {"cid": "bafkqaaa"}),
    "bucket_snapshot": ("bucket.snapshot", {}),
    "bucket_snapshots": ("bucket.snapshots", {}),
    "bucket_prepare_car": ("bucket.prepare_car", {"name": "nope"}),
}

passed, failed = [], []


def check(name, cond, detail=""):
    (passed if cond else failed).append(name)
    print(("ok    " if cond else "FAIL  ") + name + ("" if cond else f": {detail}"), flush=True)


def text(r):
    return "".join(c.text for c in r.content if getattr(c, "type", "") == "text")


def data(r):
    if r.structured_content is not None:
        return r.structured_content
    return json.loads(text(r))


def disk(rel, base=LOCAL):
    with open(os.path.join(base, rel), "rb") as f:
        return f.read()


def daemon_has(method):
    """True unless the daemon answers "unknown method" (-32601)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCKET)
    f = s.makefile("rw")
    f.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}) + "\n")
    f.flush()
    while True:
        reply = json.loads(f.readline())
        if "id" in reply:
            break
    s.close()
    return reply.get("error", {}).get("code") != -32601


async def call(s, name, args, **kw):
    return await s.call_tool(name, args, read_timeout_seconds=120, **kw)


async def expect_error(s, name, args, want, label):
    r = await call(s, name, args)
    t = text(r)
    check(label, r.is_error and re.search(want, t, re.I) is not None, f"is_error={r.is_error} text={t[:300]!r}")


async def check_tools(s):
    tools = (await s.list_tools()).tools
    by = {t.name: t for t in tools}
    check("list_tools has every tool", TOOLS <= set(by), f"missing {sorted(TOOLS - set(by))}")
    for name in sorted(TOOLS & set(by)):
        t = by[name]
        one_line = bool(t.description) and "\n" not in t.description.strip()
        schema_ok = t.input_schema.get("type") == "object" and isinstance(t.input_schema.get("properties", {}), dict)
        ann = t.annotations
        check(f"schema+description+annotations: {name}",
              one_line and schema_ok and ann is not None and ann.read_only_hint is not None,
              f"desc={t.description!r} schema={t.input_schema} ann={ann}")
    props = lambda n: set(by[n].input_schema.get("properties", {}))
    req = lambda n: set(by[n].input_schema.get("required", []))
    check("vfs_read schema: path, head, tail, offset, length, encoding; path required",
          {"path", "head", "tail", "offset", "length", "encoding"} <= props("vfs_read") and req("vfs_read") == {"path"},
          by["vfs_read"].input_schema)
    check("vfs_read_many takes paths", "paths" in props("vfs_read_many"), props("vfs_read_many"))
    check("vfs_write takes path, content", {"path", "content"} <= req("vfs_write"), req("vfs_write"))
    check("vfs_edit takes edits, dry_run", {"path", "edits", "dry_run"} <= props("vfs_edit"), props("vfs_edit"))
    check("vfs_copy/vfs_move take source, destination",
          {"source", "destination"} <= req("vfs_copy") and {"source", "destination"} <= req("vfs_move"))
    check("vfs_rmdir takes recursive", "recursive" in props("vfs_rmdir"))
    a = lambda n: by[n].annotations
    check("annotations: read tools are read-only, rmdir destructive, mkdir idempotent",
          a("vfs_read").read_only_hint is True and a("vfs_ls").read_only_hint is True
          and a("vfs_rmdir").destructive_hint is True and a("vfs_write").read_only_hint is False
          and a("vfs_mkdir").idempotent_hint is True)


async def check_files(s):
    r = await call(s, "vfs_list_mounts", {})
    paths = [m["path"] for m in data(r)["mounts"]]
    check("vfs_list_mounts lists /local /memory /ro", {"/local", "/memory", "/ro"} <= set(paths), paths)

    r = await call(s, "vfs_write", {"path": "/local/dir/sub/a.txt", "content": "hello\nworld\n"})
    check("vfs_write creates parents, bytes on disk", not r.is_error and disk("dir/sub/a.txt") == b"hello\nworld\n", text(r))
    r = await call(s, "vfs_write", {"path": "/local/dir/sub/a.txt", "content": "third\n", "mode": "append"})
    check("vfs_write append", not r.is_error and disk("dir/sub/a.txt") == b"hello\nworld\nthird\n", text(r))
    blob = bytes(range(256)) * 4
    r = await call(s, "vfs_write", {"path": "/local/dir/bin.dat", "content": base64.b64encode(blob).decode(), "encoding": "base64"})
    check("vfs_write base64 bytes", not r.is_error and disk("dir/bin.dat") == blob, text(r))

    r = await call(s, "vfs_read", {"path": "/local/dir/sub/a.txt"})
    check("vfs_read text", not r.is_error and text(r) == "hello\nworld\nthird\n", text(r))
    r = await call(s, "vfs_read", {"path": "/local/dir/sub/a.txt", "head": 2})
    check("vfs_read head", text(r) == "hello\nworld\n", text(r))
    r = await call(s, "vfs_read", {"path": "/local/dir/sub/a.txt", "tail": 2})
    check("vfs_read tail", text(r) == "world\nthird\n", text(r))
    r = await call(s, "vfs_read", {"path": "/local/dir/bin.dat", "offset": 100, "length": 300})
    d = data(r)
    check("vfs_read base64 offset/length", not r.is_error and base64.b64decode(d["base64"]) == blob[100:400]
          and d["size"] == len(blob) and d["eof"] is False, d)
    await expect_error(s, "vfs_read", {"path": "/local/dir/bin.dat"}, "not UTF-8", "vfs_read of binary as text is a tool error")

    r = await call(s, "vfs_read_many", {"paths": ["/local/dir/sub/a.txt", "/local/nope.txt"]})
    files = data(r)["files"]
    check("vfs_read_many: content and per-file error",
          files[0].get("content") == disk("dir/sub/a.txt").decode() and "error" in files[1], files)

    r = await call(s, "vfs_edit", {"path": "/local/dir/sub/a.txt", "edits": [{"old_text": "world", "new_text": "WORLD"}], "dry_run": True})
    check("vfs_edit dry run: diff, file unchanged",
          not r.is_error and "-world" in text(r) and "+WORLD" in text(r) and disk("dir/sub/a.txt") == b"hello\nworld\nthird\n", text(r))
    r = await call(s, "vfs_edit", {"path": "/local/dir/sub/a.txt", "edits": [{"oldText": "world", "newText": "WORLD"}]})
    check("vfs_edit writes the change", not r.is_error and disk("dir/sub/a.txt") == b"hello\nWORLD\nthird\n", text(r))
    await expect_error(s, "vfs_edit", {"path": "/local/dir/sub/a.txt", "edits": [{"old_text": "absent", "new_text": "x"}]},
                       "not found", "vfs_edit with text not in the file is a tool error")

    r = await call(s, "vfs_mkdir", {"path": "/memory/m/n"})
    check("vfs_mkdir with parents on /memory", not r.is_error and os.path.isdir(os.path.join(MNT, "memory/m/n")), text(r))
    r = await call(s, "vfs_mkdir", {"path": "/local/made"})
    check("vfs_mkdir on /local is on disk", not r.is_error and os.path.isdir(os.path.join(LOCAL, "made")), text(r))

    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    r = await call(s, "vfs_copy", {"source": "/local/dir", "destination": "/memory/copy"}, progress_callback=on_progress)
    same = all(
        open(os.path.join(MNT, "memory/copy", rel), "rb").read() == disk(os.path.join("dir", rel))
        for rel in ["sub/a.txt", "bin.dat"]
    )
    check("vfs_copy a tree across backends (/local -> /memory)", not r.is_error and same and data(r)["files"] == 2, text(r))
    check("vfs_copy sends progress notifications", len(progress) >= 1, progress)
    r = await call(s, "vfs_copy", {"source": "/local/dir/bin.dat", "destination": "/local/bin2.dat"})
    check("vfs_copy a file within /local", not r.is_error and disk("bin2.dat") == blob, text(r))
    await expect_error(s, "vfs_copy", {"source": "/local/dir/bin.dat", "destination": "/local/bin2.dat"},
                       "already exists", "vfs_copy onto an existing file is a tool error")

    r = await call(s, "vfs_move", {"source": "/memory/copy/sub/a.txt", "destination": "/local/moved.txt"})
    check("vfs_move across backends",
          not r.is_error and disk("moved.txt") == b"hello\nWORLD\nthird\n"
          and not os.path.exists(os.path.join(MNT, "memory/copy/sub/a.txt")), text(r))
    r = await call(s, "vfs_move", {"source": "/local/moved.txt", "destination": "/local/made/renamed.txt"})
    check("vfs_move within /local (rename)",
          not r.is_error and disk("made/renamed.txt") == b"hello\nWORLD\nthird\n" and not os.path.exists(os.path.join(LOCAL, "moved.txt")), text(r))

    r = await call(s, "vfs_stat", {"path": "/local/dir/bin.dat"})
    d = data(r)
    st = os.stat(os.path.join(LOCAL, "dir/bin.dat"))
    check("vfs_stat size/type/mount/cid field", d["size"] == st.st_size and d["type"] == "file"
          and d["mount"] == "/local" and "cid" in d and d["read_only"] is False, d)
    await expect_error(s, "vfs_stat", {"path": "/local/dir/bin.dat", "compute_cid": True, "profile": "nope"}, "profile",
                       "vfs_stat with an unknown profile is a tool error")

    r = await call(s, "vfs_ls", {"path": "/local/dir"})
    check("vfs_ls plain", "[FILE] bin.dat" in text(r) and "[DIR]  sub" in text(r), text(r))
    r = await call(s, "vfs_ls", {"path": "/local/dir", "sizes": True})
    check("vfs_ls with sizes", re.search(r"bin\.dat\s+1024", text(r)) is not None and "Total: 1 files, 1 directories" in text(r), text(r))
    r = await call(s, "vfs_ls", {"path": "/"})
    check("vfs_ls / lists the mounts", all(f"[DIR]  {m}" in text(r) for m in ["local", "memory", "ro"]), text(r))
    r = await call(s, "vfs_ls", {"path": "/local/dir", "recursive": True, "depth": 2})
    tree = data(r)["tree"]
    sub = [e for e in tree if e["name"] == "sub"]
    check("vfs_ls recursive tree", sub and sub[0]["children"][0]["name"] == "a.txt", tree)
    r = await call(s, "vfs_ls", {"path": "/local/dir", "recursive": True, "max_entries": 1})
    check("vfs_ls recursive entry limit", data(r)["entries"] == 1 and data(r)["truncated"] is True, data(r))

    want = sorted(
        "/local/" + os.path.relpath(os.path.join(root, f), LOCAL)
        for root, _, fs in os.walk(LOCAL) for f in fs if f.endswith(".txt") and not os.path.islink(os.path.join(root, f))
    )
    r = await call(s, "vfs_search", {"path": "/local", "pattern": "*.txt"})
    check("vfs_search *.txt equals os.walk of the backing dir", data(r)["matches"] == want, (data(r), want))
    r = await call(s, "vfs_search", {"path": "/local", "pattern": "**/*.txt", "exclude": ["made"]})
    check("vfs_search with exclusion", data(r)["matches"] == [w for w in want if not w.startswith("/local/made/")], data(r))

    await expect_error(s, "vfs_rmdir", {"path": "/local/dir"}, "not empty", "vfs_rmdir of a non-empty dir is a tool error")
    r = await call(s, "vfs_rmdir", {"path": "/local/dir", "recursive": True})
    check("vfs_rmdir recursive removes on disk", not r.is_error and not os.path.exists(os.path.join(LOCAL, "dir")), text(r))

    r = await call(s, "vfs_stats", {})
    d = data(r)
    check("vfs_stats: ops and mount point", isinstance(d["stats"]["ops"], list) and d["status"]["mountpoint"] == MNT, d)

    r = await call(s, "vfs_mount", {"path": "/scratch", "uri": "memory://"})
    check("vfs_mount adds a mount seen by ls", not r.is_error and os.path.isdir(os.path.join(MNT, "scratch")), text(r))
    r = await call(s, "vfs_unmount", {"path": "/scratch"})
    check("vfs_unmount removes it", not r.is_error and not os.path.exists(os.path.join(MNT, "scratch")), text(r))
    await expect_error(s, "vfs_mount", {"path": "/local", "uri": "memory://"}, ".", "vfs_mount over an existing mount is a tool error")


async def check_refusals(s):
    await expect_error(s, "vfs_read", {"path": "/local/../../etc/passwd"}, r"\.\.", "escape with .. is a tool error")
    await expect_error(s, "vfs_read", {"path": "/local/escape/passwd"}, "symlink", "symlink out of the backend root is a tool error")
    await expect_error(s, "vfs_ls", {"path": "/local/escape"}, "symlink", "listing through an escaping symlink is a tool error")
    r = await call(s, "vfs_ls", {"path": "/local"})
    check("an escaping symlink is left out of listings", "escape" not in text(r), text(r))
    await expect_error(s, "vfs_write", {"path": "/ro/new.txt", "content": "x"}, "read-only", "write to a read-only mount is a tool error")
    check("the read-only mount is untouched", not os.path.exists(os.path.join(RO, "new.txt")))
    await expect_error(s, "vfs_rmdir", {"path": "/ro/keep", "recursive": True}, "read-only", "rmdir on a read-only mount is a tool error")
    await expect_error(s, "vfs_write", {"path": "/top.txt", "content": "x"}, "not inside a mount", "write above the mounts is a tool error")
    await expect_error(s, "vfs_read", {"path": "/local/big.bin"}, "over the read cap", "1 GiB read is refused by the cap")
    await expect_error(s, "vfs_read", {"path": "/local/big.bin", "encoding": "base64"}, "over the read cap", "1 GiB base64 read is refused by the cap")
    r = await call(s, "vfs_read", {"path": "/local/big.bin", "offset": (1 << 30) - 10, "length": 100})
    d = data(r)
    check("a part of the 1 GiB file reads (offset near the end)", base64.b64decode(d["base64"]) == b"\0" * 10 and d["eof"] is True, d)
    await expect_error(s, "vfs_read", {}, "path", "missing argument is a tool error")
    await expect_error(s, "vfs_read", {"path": 5}, "path|string|invalid", "wrongly typed argument is a tool error")
    await expect_error(s, "vfs_read", {"path": "/local/x", "bogus": 1}, "bogus|unknown", "unknown argument is a tool error")
    await expect_error(s, "vfs_read", {"path": "/local/nothing.txt"}, "no such file", "missing file is a tool error")
    await expect_error(s, "vfs_rmdir", {"path": "/local", "recursive": True}, "mount", "removing a mount root is a tool error")
    await expect_error(s, "vfs_search", {"path": "/local", "pattern": "[unclosed"}, "bad glob", "bad glob is a tool error")


async def check_feature_tools(s):
    for tool, (method, args) in FEATURE_TOOLS.items():
        r = await call(s, tool, args)
        if daemon_has(method):
            check(f"{tool}: the daemon has {method}, the tool does not say unavailable",
                  "not available" not in text(r), text(r))
        else:
            check(f"{tool}: daemon lacks {method} -> tool error saying not available",
                  r.is_error and "not available" in text(r), text(r))


def golden_cid(path, whole_dir=False):
    """The CID ipfs-car gives path (a directory with hidden files; a file unwrapped)."""
    car = os.environ.get("IKF_IPFS_CAR", "")
    if car:
        out = os.path.join(os.environ["IPFS_KIT_HOME"], f"oracle-{os.getpid()}-{len(passed)}.car")
        args = [car, "pack", path, "-H" if whole_dir else "--no-wrap", "--output", out]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    args = [BIN, "cid", "-Q"] + (["--hidden"] if whole_dir else []) + [path]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()[0]


async def check_buckets(s):
    """The bucket tools on bucket b1 (mount /bkt): every result against the files and ipfs-car."""
    bkt = os.environ.get("IKF_BKT")
    if not bkt:
        return
    os.makedirs(os.path.join(MNT, "bkt", "d"), exist_ok=True)
    small, big = b"indexed through the mount\n", os.urandom(3 * 1024 * 1024 + 7)
    for rel, body in (("a.txt", small), ("d/b.bin", big)):
        with open(os.path.join(MNT, "bkt", rel), "wb") as f:
            f.write(body)
    root = golden_cid(bkt, whole_dir=True)
    want = {rel: golden_cid(os.path.join(bkt, rel)) for rel in ("a.txt", "d/b.bin")}

    r = await call(s, "bucket_list", {})
    b1 = [b for b in data(r).get("buckets", []) if b.get("name") == "b1"] if not r.is_error else []
    check("bucket_list: b1 with 2 files, its size, and ipfs-car's root CID of the backing tree",
          len(b1) == 1 and b1[0]["files"] == 2 and b1[0]["size"] == len(small) + len(big) and b1[0]["root_cid"] == root,
          f"want root {root}: {text(r)[:500]}")

    r = await call(s, "bucket_files", {"name": "b1"})
    rows = {f["path"]: f for f in data(r).get("files", [])} if not r.is_error else {}
    check("bucket_files: each file with ipfs-car's CID and its size",
          set(rows) == set(want) and all(rows[p]["cid"] == want[p] for p in want)
          and rows["d/b.bin"]["size"] == len(big), f"want {want}: {text(r)[:500]}")
    r = await call(s, "bucket_files", {"name": "b1", "limit": 1})
    check("bucket_files: limit keeps one and counts the rest",
          not r.is_error and len(data(r)["files"]) == 1 and data(r).get("omitted") == 1, text(r)[:300])

    r = await call(s, "bucket_find_cid", {"cid": want["a.txt"]})
    found = data(r).get("found", []) if not r.is_error else []
    check("bucket_find_cid: finds a.txt in b1 by its CID",
          [(f["bucket"], f["path"]) for f in found] == [("b1", "a.txt")], text(r)[:300])
    with open(os.path.join(LOCAL, "not-in-a-bucket.txt"), "wb") as f:
        f.write(b"outside every bucket\n")
    r = await call(s, "bucket_find_cid", {"cid": golden_cid(os.path.join(LOCAL, "not-in-a-bucket.txt"))})
    check("bucket_find_cid: a CID in no bucket finds nothing", not r.is_error and data(r).get("found") == [], text(r)[:300])

    r = await call(s, "bucket_snapshot", {"name": "b1"})
    snap = data(r) if not r.is_error else {}
    sid = snap.get("snapshot_id", "")
    on_disk = os.path.join(os.environ["IPFS_KIT_HOME"], "vfs", "snapshots", sid + ".json")
    check("bucket_snapshot: b1 frozen with its root, the snapshot file written",
          bool(sid) and snap["buckets"]["b1"]["root_cid"] == root and os.path.exists(on_disk), text(r)[:500])
    if sid:
        with open(os.path.join(MNT, ".snapshots", sid, "b1", "a.txt"), "rb") as f:
            check("bucket_snapshot: .snapshots/<id>/b1/a.txt reads the bytes", f.read() == small)
    r = await call(s, "bucket_snapshots", {"name": "b1"})
    ids = [x["snapshot_id"] for x in data(r).get("snapshots", [])] if not r.is_error else []
    check("bucket_snapshots: lists the snapshot just taken", sid in ids, text(r)[:300])

    r = await call(s, "bucket_prepare_car", {"name": "b1"})
    prep = data(r) if not r.is_error else {}
    cars = [c["path"] for c in prep.get("cars", [])]
    check("bucket_prepare_car: one CAR rooted at the bucket root, on disk",
          prep.get("root") == root and len(cars) == 1 and os.path.getsize(cars[0]) > len(big), text(r)[:500])
    car = os.environ.get("IKF_IPFS_CAR", "")
    if car and len(cars) == 1:
        roots = subprocess.run([car, "roots", cars[0]], capture_output=True, text=True).stdout.split()
        out = os.path.join(os.environ["IPFS_KIT_HOME"], "unpacked")
        subprocess.run([car, "unpack", cars[0], "--output", out], capture_output=True, check=True)
        same = all(open(os.path.join(out, p), "rb").read() == b for p, b in (("a.txt", small), ("d/b.bin", big)))
        check("bucket_prepare_car: ipfs-car reads the root and unpacks equal bytes", roots == [root] and same,
              f"roots={roots} want {root}")


async def check_roots(read, write):
    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=f"file://{MNT}/memory")])

    async with ClientSession(read, write, list_roots_callback=roots) as s:
        await s.initialize()
        r = await call(s, "vfs_write", {"path": "/memory/inroot.txt", "content": "ok"})
        check("roots: a path inside the client's root works", not r.is_error, text(r))
        await expect_error(s, "vfs_read", {"path": "/local/big.bin", "offset": 0, "length": 1}, "outside the client's roots",
                           "roots: a path outside the client's roots is a tool error")


def node_rpc(path):
    import urllib.request
    req = urllib.request.Request(os.environ["IKF_IPFS_API"] + "/api/v0/" + path, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def tree_files(base):
    out = {}
    for root, _, fs in os.walk(base):
        for f in fs:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, base)] = fh.read()
    return out


async def check_ipfs(s):
    want = os.environ["IKF_WANT_ROOT"]
    progress = []
    r = await call(s, "vfs_stat", {"path": "/local/tree/sub/b.bin", "compute_cid": True})
    d = data(r)
    check("vfs_stat compute_cid equals the node's own CID of the file",
          d.get("cid") == os.environ["IKF_WANT_FILE_CID"] and d.get("cid_source") == "computed", (d, os.environ["IKF_WANT_FILE_CID"]))

    async def on_progress(p, total, message):
        progress.append((p, message))

    r = await call(s, "vfs_sync_to_ipfs", {"path": "/local/tree"}, progress_callback=on_progress)
    root = data(r).get("root") if not r.is_error else None
    check("vfs_sync_to_ipfs: root equals the node's own CID of the tree", root == want, (text(r), want))
    check("vfs_sync_to_ipfs: the node has it pinned", root is not None and root in node_rpc(f"pin/ls?arg={root}&type=recursive&cid-base=base32"))
    r = await call(s, "vfs_sync_from_ipfs", {"cid": want, "path": "/memory/pulled"}, progress_callback=on_progress)
    check("vfs_sync_from_ipfs: the pulled tree equals the source",
          not r.is_error and tree_files(os.path.join(MNT, "memory/pulled")) == tree_files(os.path.join(LOCAL, "tree")), text(r))
    check("sync tools forward the daemon's progress notifications", len(progress) >= 1, progress)
    await expect_error(s, "vfs_sync_from_ipfs", {"cid": want, "path": "/ro/pulled"}, "read-only",
                       "vfs_sync_from_ipfs into a read-only mount is a tool error")
    await expect_error(s, "vfs_sync_from_ipfs", {"cid": "not-a-cid", "path": "/memory/bad"}, ".",
                       "vfs_sync_from_ipfs of a bad CID is a tool error")


async def main():
    if TRANSPORT == "http":
        proc = subprocess.Popen([BIN, "mcp", "--mount", MNT, "--http", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        try:
            m, seen = None, []
            for _ in range(200):  # log lines (RUST_LOG) may come first
                line = proc.stderr.readline()
                seen.append(line)
                m = re.search(r"serving (http://\S+)", line)
                if m or not line:
                    break
            check("mcp --http prints its address", m is not None, seen[-5:])
            # Keep draining stderr so a chatty server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            if not m:
                return
            async with streamable_http_client(m.group(1)) as (read, write, *_):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    await check_tools(s)
                    r = await call(s, "vfs_write", {"path": "/local/http.txt", "content": "over http"})
                    check("http: vfs_write lands on disk", not r.is_error and disk("http.txt") == b"over http", text(r))
                    r = await call(s, "vfs_read", {"path": "/local/http.txt"})
                    check("http: vfs_read", text(r) == "over http", text(r))
                    await expect_error(s, "vfs_read", {"path": "/local/../../etc/passwd"}, r"\.\.", "http: escape is a tool error")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return
    if TRANSPORT == "ipfs":
        env = {"IPFS_KIT_IPFS_API": os.environ["IKF_IPFS_API"]}
        params = StdioServerParameters(command=BIN, args=["mcp", "--mount", MNT], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                await check_ipfs(s)
        return
    params = StdioServerParameters(command=BIN, args=["mcp", "--mount", MNT])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            await check_tools(s)
            await check_files(s)
            await check_refusals(s)
            await check_feature_tools(s)
            await check_buckets(s)
    async with stdio_client(params) as (read, write):
        await check_roots(read, write)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException:
        traceback.print_exc()
        failed.append("exception")
    print(f"{len(passed)} passed, {len(failed)} failed")
    sys.exit(1 if failed or not passed else 0)
