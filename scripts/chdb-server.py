#!/usr/bin/env python3
"""A current ClickHouse engine behind ClickHouse's HTTP interface, for tests.

Debian ships ClickHouse 18.16; production users run current releases. chdb
(the `chdb` Python package) embeds a current engine without a server; this
serves it on loopback with what Ticks uses of the HTTP interface, so that
the ClickHouse backend's tests run their SQL on a current release too:

- a POST body is a statement; its answer is in the statement's FORMAT, else
  TabSeparated (as clickhouse-server answers);
- a POST with a `query` parameter `INSERT INTO t (cols) FORMAT RowBinary`
  inserts the body's rows (read through the `file` table function, since an
  embedded engine takes no data stream with a statement);
- other parameters (settings of a cluster's inserts) are ignored: this is
  one server;
- an error answers 500 with the engine's message (`Code: N. DB::Exception`).

Usage: chdb-server.py PORT DATA_DIR   (serves until killed)
"""
import http.server
import os
import re
import sys
import tempfile
import threading
import urllib.parse

from chdb import session as chs

INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[`\w.]+)\s*\((?P<cols>[^)]*)\)\s*FORMAT\s+RowBinary\s*$",
    re.IGNORECASE | re.DOTALL,
)
FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)

lock = threading.Lock()


class Engine:
    def __init__(self, path):
        self.session = chs.Session(path)
        self.tmp = tempfile.mkdtemp(prefix="chdb-server-")

    def run(self, sql):
        m = FORMAT.search(sql)
        fmt = "TabSeparated"
        if m:
            fmt = m.group(1)
            sql = sql[: m.start()]
        result = self.session.query(sql, fmt)
        return bytes(result.bytes()) if result is not None else b""

    def insert(self, table, cols, body):
        db, _, name = table.replace("`", "").rpartition(".")
        wanted = [c.strip().strip("`") for c in cols.split(",")]
        types = dict(
            line.split("\t", 1)
            for line in self.session.query(
                f"SELECT name, type FROM system.columns WHERE database = {quote(db or 'default')} AND table = {quote(name)}",
                "TabSeparated",
            )
            .bytes()
            .decode()
            .splitlines()
        )
        structure = ", ".join(f"`{c}` {types[c]}" for c in wanted)
        path = os.path.join(self.tmp, f"rows-{threading.get_ident()}.bin")
        with open(path, "wb") as f:
            f.write(body)
        listed = ", ".join(f"`{c}`" for c in wanted)
        self.session.query(
            f"INSERT INTO {table} ({listed}) SELECT * FROM file({quote(path)}, 'RowBinary', {quote(structure)})",
            "TabSeparated",
        )
        return b""


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(http.server.BaseHTTPRequestHandler):
    engine = None

    def do_POST(self):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = params.get("query")
        try:
            with lock:
                if query is not None:
                    m = INSERT.match(query)
                    if m:
                        out = self.engine.insert(m.group("table"), m.group("cols"), body)
                    else:
                        out = self.engine.run(query + " " + body.decode())
                else:
                    out = self.engine.run(body.decode())
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except Exception as e:  # the engine's message, as clickhouse-server gives it
            text = str(e).encode()
            self.send_response(500)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    def do_GET(self):
        out = b"Ok.\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    Handler.engine = Engine(path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"chdb {Handler.engine.session.query('SELECT version()', 'TabSeparated').bytes().decode().strip()} on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
