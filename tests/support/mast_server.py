"""A small local MAST API server on 127.0.0.1, for testing astroquery: inputs.

It answers the calls that astroquery's ``Observations`` client makes (read from
astroquery.mast's discovery-portal client):

* ``POST /portal/Mashup/Mashup.asmx/columnsconfig`` (``colConfigId=...``): column
  descriptions, used to build query filters;
* ``POST /api/v0/invoke`` (``request=<json>``): the services ``Mast.Caom.Filtered``
  (observations by criteria, exact values or one ``%`` wildcard) and
  ``Mast.Caom.Products`` (products of observations by ``obsid``);
* ``HEAD``/``GET /api/v0.1/Download/file?uri=mast:HST/product/<name>``: the file.

The catalogue is filled by the test with real files (gzipped files are served
decompressed, under their ``.fits`` name, as MAST serves them).  Downloads can
be made to fail a number of times (HTTP 500, or a truncated body) to exercise
retries.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

OBSERVATION_FIELDS = [
    ("obsid", "string"),
    ("obs_id", "string"),
    ("obs_collection", "string"),
    ("instrument_name", "string"),
    ("target_name", "string"),
    ("dataproduct_type", "string"),
    ("dataRights", "string"),
    ("t_exptime", "float"),
]
PRODUCT_FIELDS = [
    ("obsID", "string"),
    ("obs_collection", "string"),
    ("dataproduct_type", "string"),
    ("obs_id", "string"),
    ("description", "string"),
    ("type", "string"),
    ("dataURI", "string"),
    ("productType", "string"),
    ("productGroupDescription", "string"),
    ("productSubGroupDescription", "string"),
    ("project", "string"),
    ("proposal_id", "string"),
    ("productFilename", "string"),
    ("size", "long"),
    ("parent_obsid", "string"),
    ("dataRights", "string"),
    ("calib_level", "int"),
]
AUXILIARY = {"ASN", "SPT", "EPC", "JIF", "JIT", "TRL"}
RAW_LEVEL = {"ASN", "RAW", "SPT", "EPC", "TAG", "WAV", "RAWACQ", "RAWTAG_A", "RAWTAG_B"}


def _column_config(fields: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {name: {"text": name, "type": kind, "vot.datatype": kind} for name, kind in fields}


@dataclass
class Product:
    obsid: str
    obs_id: str
    filename: str
    path: Path  # served decompressed when it ends in .gz, read when first downloaded
    subgroup: str
    _data: bytes | None = None

    @property
    def size(self) -> int:
        if self.path.name.endswith(".gz"):
            with open(self.path, "rb") as handle:  # gzip's ISIZE trailer
                handle.seek(-4, 2)
                return int.from_bytes(handle.read(4), "little")
        return self.path.stat().st_size

    @property
    def data(self) -> bytes:
        if self._data is None:
            raw = self.path.read_bytes()
            self._data = gzip.decompress(raw) if self.path.name.endswith(".gz") else raw
        return self._data

    def row(self) -> dict[str, object]:
        science = self.subgroup not in AUXILIARY
        return {
            "obsID": self.obsid,
            "obs_collection": "HST",
            "dataproduct_type": "image",
            "obs_id": self.obs_id,
            "description": f"DADS {self.subgroup} file",
            "type": "S" if science else "C",
            "dataURI": f"mast:HST/product/{self.filename}",
            "productType": "SCIENCE" if science else "AUXILIARY",
            "productGroupDescription": "Minimum Recommended Products"
            if self.subgroup in RAW_LEVEL
            else "",
            "productSubGroupDescription": self.subgroup,
            "project": "CALDP-TEST",
            "proposal_id": "0000",
            "productFilename": self.filename,
            "size": self.size,
            "parent_obsid": self.obsid,
            "dataRights": "PUBLIC",
            "calib_level": 1 if self.subgroup in RAW_LEVEL else 2,
        }


@dataclass
class Catalog:
    """Observations and their products."""

    observations: list[dict[str, object]] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)

    def add_observation(self, obs_id: str, instrument: str, files: list[Path | tuple[str, Path]]):
        """An HST observation ``obs_id`` whose products are ``files``.

        A file is a path (served under its own name, ``.gz`` removed) or
        ``(name, path)`` to serve ``path``'s bytes under another name.
        """
        obsid = str(24000000 + len(self.observations) + 1)
        self.observations.append(
            {
                "obsid": obsid,
                "obs_id": obs_id,
                "obs_collection": "HST",
                "instrument_name": instrument,
                "target_name": "CALDP-TEST",
                "dataproduct_type": "image",
                "dataRights": "PUBLIC",
                "t_exptime": 100.0,
            }
        )
        for item in files:
            name, path = item if isinstance(item, tuple) else (item.name, item)
            name = name.removesuffix(".gz")
            suffix = name.split("_", 1)[1].rsplit(".", 1)[0].upper()
            self.products.append(Product(obsid, obs_id, name, path, suffix))
        return obsid

    def by_name(self, name: str) -> Product | None:
        return next((p for p in self.products if p.filename == name), None)


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$", re.IGNORECASE
    )


class MastServer:
    """The server, run in a thread: ``with MastServer(catalog) as server: server.url``."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.requests: list[tuple[str, str]] = []  # (method, service or path)
        self.failures: dict[str, list[str]] = {}  # file name -> modes to apply in turn
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail_download(self, name: str, *modes: str) -> None:
        """Make the next downloads of ``name`` fail: mode "500" or "truncate", one per GET."""
        self.failures[name] = list(modes)

    def downloads(self, name: str) -> int:
        return sum(1 for method, what in self.requests if method == "GET" and what == name)

    def __enter__(self) -> MastServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- request handling

    def _record(self, method: str, what: str) -> None:
        with self._lock:
            self.requests.append((method, what))

    def _invoke(self, request: dict) -> dict:
        service = request.get("service", "")
        params = request.get("params", {})
        self._record("POST", service)
        if service == "Mast.Caom.Filtered":
            rows = [o for o in self.catalog.observations if _matches(o, params.get("filters", []))]
            return _result(OBSERVATION_FIELDS, rows)
        if service == "Mast.Caom.Products":
            wanted = set(str(params.get("obsid", "")).split(","))
            rows = [p.row() for p in self.catalog.products if p.obsid in wanted]
            return _result(PRODUCT_FIELDS, rows)
        return {"status": "ERROR", "msg": f"service {service} is not served here"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _send_json(self, obj: object) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _form(self) -> dict[str, list[str]]:
                length = int(self.headers.get("Content-Length") or 0)
                return parse_qs(self.rfile.read(length).decode())

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                form = self._form()
                if path.endswith("/portal/Mashup/Mashup.asmx/columnsconfig"):
                    name = form.get("colConfigId", [""])[0]
                    server._record("POST", f"columnsconfig:{name}")
                    fields = PRODUCT_FIELDS if "Products" in name else OBSERVATION_FIELDS
                    self._send_json(_column_config(fields))
                elif path.endswith("/api/v0/invoke"):
                    self._send_json(server._invoke(json.loads(form["request"][0])))
                else:
                    self.send_error(404)

            def _file(self, send_body: bool) -> None:
                split = urlsplit(self.path)
                uri = parse_qs(split.query).get("uri", [""])[0]
                name = uri.rsplit("/", 1)[-1]
                product = server.catalog.by_name(name)
                server._record(self.command, name)
                if not split.path.endswith("/api/v0.1/Download/file") or product is None:
                    self.send_error(404)
                    return
                mode = ""
                if send_body:
                    with server._lock:
                        modes = server.failures.get(name) or []
                        mode = modes.pop(0) if modes else ""
                if mode == "500":
                    self.send_error(500, "simulated server error")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(product.data)))
                self.end_headers()
                if not send_body:
                    return
                if mode == "truncate":
                    self.wfile.write(product.data[: len(product.data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(product.data)

            def do_HEAD(self) -> None:
                self._file(send_body=False)

            def do_GET(self) -> None:
                self._file(send_body=True)

        return Handler


def _matches(observation: dict[str, object], filters: list[dict]) -> bool:
    for item in filters:
        name = str(item.get("paramName", ""))
        value = str(observation.get(name, ""))
        values = [str(v).lower() for v in item.get("values", [])]
        free = item.get("freeText")
        ok = value.lower() in values or (bool(free) and bool(_like(str(free)).match(value)))
        if not ok:
            return False
    return True


def _result(fields: list[tuple[str, str]], rows: list[dict]) -> dict:
    return {
        "status": "COMPLETE",
        "msg": "",
        "fields": [{"name": name, "type": kind} for name, kind in fields],
        "data": rows,
        "paging": {
            "page": 1,
            "pageSize": max(1, len(rows)),
            "pagesFiltered": 1,
            "rows": len(rows),
            "rowsFiltered": len(rows),
            "rowsTotal": len(rows),
        },
    }
