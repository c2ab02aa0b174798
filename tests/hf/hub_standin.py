#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub, for tests/hf_backend.rs.

It is NOT the Hub: it answers, on 127.0.0.1, only the Hub paths that
opendal's `hf` service calls to read a repository, with the shapes the Hub
gives them:

  GET  /api/{models|datasets|spaces}/ORG/NAME/tree/REV[/PATH]?expand=True[&cursor=C]
       one directory's entries (JSON list), paged with a `Link: <...>; rel="next"` header
  POST /api/{models|datasets|spaces}/ORG/NAME/paths-info/REV   (form: paths=P&expand=True)
       the entries named (JSON list; an unknown path is left out)
  GET  /ORG/NAME/resolve/REV/PATH, /datasets/ORG/NAME/resolve/..., /spaces/ORG/NAME/resolve/...
       a file's bytes (Range honoured); an LFS file answers 302 to /cdn/SHA256
       as the Hub redirects to its CDN, which serves the bytes (Range honoured)

Repositories are directories under --root: ROOT/{models|datasets|spaces}/ORG/NAME/...
Their files are served as they are: `oid` is the git blob SHA-1 of the bytes,
files of LFS_MIN bytes and more have an `lfs` entry (SHA-256), as on the Hub.
Revisions: `main` and the repository's commit id (a SHA-1 derived from its
files); any other revision answers 404 with X-Error-Code: RevisionNotFound.
An unknown repository answers 401 RepoNotFound (as the Hub does for anonymous
callers). With --token T every request but the CDN's must carry
`Authorization: Bearer T`.
Each request is appended to --log as `METHOD PATH RANGE` (one line).
Prints `listening PORT` once it accepts connections.
"""

import argparse
import hashlib
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Files this size and larger are LFS files (the Hub stores binaries and big
# files in LFS; the exact threshold does not matter to the client).
LFS_MIN = 64 * 1024
# Entries per tree page: small so a test repository spans several pages.
PAGE = 20
# One commit date for every entry (the Hub's ISO-8601 form).
DATE = "2024-05-01T12:00:00.000Z"
KINDS = {"models", "datasets", "spaces"}

ARGS = None
LOG_LOCK = threading.Lock()


def git_blob_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repo_dir(kind, repo_id):
    return os.path.join(ARGS.root, kind, *repo_id.split("/"))


def commit_id(base):
    h = hashlib.sha1()
    for dirpath, dirs, files in sorted(os.walk(base)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(os.path.relpath(p, base).encode())
            with open(p, "rb") as fh:
                h.update(hashlib.sha1(fh.read()).digest())
    return h.hexdigest()


def last_commit(base):
    return {"id": commit_id(base), "title": "Upload folder using huggingface_hub", "date": DATE}


def entry(base, rel):
    full = os.path.join(base, rel)
    if os.path.isdir(full):
        oid = hashlib.sha1(("tree " + rel).encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": rel, "lastCommit": last_commit(base)}
    with open(full, "rb") as fh:
        data = fh.read()
    e = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": rel}
    if len(data) >= LFS_MIN:
        e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    e["lastCommit"] = last_commit(base)
    return e


def safe_rel(path):
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return None
    return "/".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        if ARGS.log:
            with LOG_LOCK, open(ARGS.log, "a") as fh:
                fh.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def send_plain(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def hub_error(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        self.send_plain(status, body, {"Content-Type": "application/json",
                                       "X-Error-Code": code, "X-Error-Message": message})

    def send_json(self, value, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.send_plain(200, json.dumps(value).encode(), h)

    def authorized(self):
        if ARGS.token is None:
            return True
        if self.headers.get("Authorization") == "Bearer " + ARGS.token:
            return True
        self.hub_error(401, "RepoNotFound", "Invalid credentials in Authorization header")
        return False

    def open_repo(self, kind, repo_id, rev):
        """(base dir) of an existing repository at a known revision, or None (answered)."""
        base = repo_dir(kind, repo_id)
        if not os.path.isdir(base):
            self.hub_error(401, "RepoNotFound", "Repository not found")
            return None
        if rev not in ("main", commit_id(base)):
            self.hub_error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            return None
        return base

    def do_GET(self):
        self.record()
        url = urllib.parse.urlsplit(self.path)
        segs = url.path.split("/")[1:]
        query = urllib.parse.parse_qs(url.query)
        # The CDN answers signed URLs without the Hub's token.
        if segs and segs[0] == "cdn":
            return self.cdn(segs)
        if not self.authorized():
            return
        if len(segs) >= 5 and segs[0] == "api" and segs[1] in KINDS and segs[4] == "tree":
            return self.tree(segs, query)
        kind = "models"
        if segs and segs[0] in ("datasets", "spaces"):
            kind, segs = segs[0], segs[1:]
        if len(segs) >= 4 and segs[2] == "resolve":
            return self.resolve(kind, segs)
        self.hub_error(404, "NotFound", "Not found")

    do_HEAD = do_GET

    def tree(self, segs, query):
        if len(segs) < 6:
            return self.hub_error(404, "RevisionNotFound", "Invalid rev id: ")
        kind, repo_id = segs[1], urllib.parse.unquote(segs[2]) + "/" + urllib.parse.unquote(segs[3])
        rev = urllib.parse.unquote(segs[5])
        base = self.open_repo(kind, repo_id, rev)
        if base is None:
            return
        rel = safe_rel(urllib.parse.unquote("/".join(segs[6:])))
        if rel is None or not os.path.isdir(os.path.join(base, rel)):
            return self.hub_error(404, "EntryNotFound", "Entry not found")
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        names = []
        if recursive:
            for dirpath, dirs, files in os.walk(os.path.join(base, rel)):
                for n in dirs + files:
                    names.append(os.path.relpath(os.path.join(dirpath, n), base))
        else:
            for n in os.listdir(os.path.join(base, rel)):
                names.append(os.path.join(rel, n) if rel else n)
        names.sort()
        start = int(query.get("cursor", ["0"])[0] or 0)
        page = [entry(base, n) for n in names[start:start + PAGE]]
        headers = {}
        if start + PAGE < len(names):
            q = {"expand": "True", "cursor": str(start + PAGE)}
            if recursive:
                q["recursive"] = "True"
            nxt = "http://%s%s?%s" % (self.headers.get("Host"), url_path(self.path), urllib.parse.urlencode(q))
            headers["Link"] = '<%s>; rel="next"' % nxt
        self.send_json(page, headers)

    def do_POST(self):
        self.record()
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        if not self.authorized():
            return
        segs = urllib.parse.urlsplit(self.path).path.split("/")[1:]
        if len(segs) != 6 or segs[0] != "api" or segs[1] not in KINDS or segs[4] != "paths-info":
            return self.hub_error(404, "NotFound", "Not found")
        repo_id = urllib.parse.unquote(segs[2]) + "/" + urllib.parse.unquote(segs[3])
        base = self.open_repo(segs[1], repo_id, urllib.parse.unquote(segs[5]))
        if base is None:
            return
        out = []
        for p in urllib.parse.parse_qs(body).get("paths", []):
            rel = safe_rel(p)
            if rel and os.path.exists(os.path.join(base, rel)):
                out.append(entry(base, rel))
        self.send_json(out)

    def resolve(self, kind, segs):
        repo_id = urllib.parse.unquote(segs[0]) + "/" + urllib.parse.unquote(segs[1])
        base = self.open_repo(kind, repo_id, urllib.parse.unquote(segs[3]))
        if base is None:
            return
        rel = safe_rel(urllib.parse.unquote("/".join(segs[4:])))
        if not rel or not os.path.isfile(os.path.join(base, rel)):
            return self.hub_error(404, "EntryNotFound", "Entry not found")
        e = entry(base, rel)
        common = {"X-Repo-Commit": commit_id(base), "ETag": '"%s"' % e["oid"]}
        if "lfs" in e:
            sha = e["lfs"]["oid"]
            os.makedirs(os.path.join(ARGS.root, ".cdn"), exist_ok=True)
            link = os.path.join(ARGS.root, ".cdn", sha)
            if not os.path.exists(link):
                os.symlink(os.path.abspath(os.path.join(base, rel)), link)
            common.update({"Location": "/cdn/%s?Expires=9999999999" % sha,
                           "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(e["size"])})
            return self.send_plain(302, b"", common)
        self.serve_bytes(os.path.join(base, rel), common)

    def cdn(self, segs):
        sha = segs[1] if len(segs) > 1 else ""
        path = os.path.join(ARGS.root, ".cdn", sha)
        if len(sha) != 64 or not os.path.exists(path):
            return self.send_plain(403, b"AccessDenied")
        self.serve_bytes(path, {"ETag": '"%s"' % sha})

    def serve_bytes(self, path, headers):
        with open(path, "rb") as fh:
            data = fh.read()
        size = len(data)
        headers = dict(headers)
        headers["Accept-Ranges"] = "bytes"
        rng = self.headers.get("Range")
        if not rng:
            return self.send_plain(200, data, headers)
        try:
            unit, spec = rng.split("=", 1)
            first, last = spec.split("-", 1)
            if unit.strip() != "bytes" or "," in spec:
                raise ValueError
            if first == "":
                start, end = max(0, size - int(last)), size - 1
            else:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
        except ValueError:
            return self.send_plain(200, data, headers)
        if start >= size or start > end:
            headers["Content-Range"] = "bytes */%d" % size
            return self.send_plain(416, b"", headers)
        headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
        self.send_plain(206, data[start:end + 1], headers)


def url_path(p):
    return urllib.parse.urlsplit(p).path


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--log")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
