"""Drive an HTTP endpoint with `wrk` (C, one thread): a POST body from a file, requests/s, latency percentiles."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import uuid
from dataclasses import asdict, dataclass

from bench.common import WORK

log = logging.getLogger(__name__)

_LUA = """\
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "{content_type}"
{extra_headers}
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class Body:
    """A request: its bytes, content type, the path with its query, extra headers, tiles it carries."""

    data: bytes
    content_type: str
    path: str
    tiles: int = 1
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class WrkResult:
    connections: int
    seconds: int
    requests: int
    rps: float
    tiles_per_s: float
    latency_ms: dict[str, float]  # p50, p75, p90, p99, mean
    non_2xx: int
    socket_errors: str


def multipart(field: str, filename: str, data: bytes, content_type: str,
              fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data request: one file part, then plain form `fields`."""
    boundary = uuid.uuid4().hex
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    for name, value in (fields or {}).items():
        part += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
    return part + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def multipart_many(field: str, files: list[tuple[str, bytes]], content_type: str) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart request with one part per (filename, data)."""
    boundary = uuid.uuid4().hex
    parts = b"".join(
        (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
         f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n" for name, data in files)
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match[1]) * _UNITS[match[2]]


def parse(output: str) -> dict:
    """Requests/s, total requests, latency percentiles and errors from `wrk --latency` output."""
    out: dict = {"latency_ms": {}, "non_2xx": 0, "socket_errors": ""}
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        out["rps"] = float(match[1])
    if match := re.search(r"(\d+) requests in", output):
        out["requests"] = int(match[1])
    if match := re.search(r"^\s+Latency\s+(\S+)", output, re.M):
        out["latency_ms"]["mean"] = _ms(match[1])
    for pct in ("50", "75", "90", "99"):
        if match := re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M):
            out["latency_ms"][f"p{pct}"] = _ms(match[1])
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        out["non_2xx"] = int(match[1])
    if match := re.search(r"Socket errors:(.*)", output):
        out["socket_errors"] = match[1].strip()
    return out


def run(url: str, body: Body, connections: int, seconds: int, label: str) -> WrkResult:
    """`wrk -t1 -c<connections> -d<seconds>s --latency` against url + body.path with the body POSTed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run bench/setup.sh (apt-get install wrk)")
    folder = WORK / "wrk"
    folder.mkdir(parents=True, exist_ok=True)
    body_path = folder / f"{label}.body"
    body_path.write_bytes(body.data)
    extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in body.headers)
    script = folder / f"{label}.lua"
    script.write_text(_LUA.format(body=body_path, content_type=body.content_type, extra_headers=extra))
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s", "-s", str(script),
               url + body.path]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    if done.returncode != 0 or "Requests/sec" not in done.stdout:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    parsed = parse(done.stdout)
    requests = parsed.get("requests", 0)
    ok_share = (requests - parsed["non_2xx"]) / requests if requests else 0.0  # refused answers carry no tiles
    rps = parsed.get("rps", float("nan"))
    result = WrkResult(connections=connections, seconds=seconds, requests=requests,
                       rps=rps, tiles_per_s=rps * ok_share * body.tiles,
                       latency_ms=parsed["latency_ms"], non_2xx=parsed["non_2xx"],
                       socket_errors=parsed["socket_errors"])
    log.info("%s c=%d: %.1f req/s (%.1f tiles/s), p50 %.2f ms, non-2xx %d", label, connections, result.rps,
             result.tiles_per_s, result.latency_ms.get("p50", float("nan")), result.non_2xx)
    return result


def as_dict(result: WrkResult) -> dict:
    return asdict(result)


def check_answer(url: str, body: Body) -> None:
    """One request with httpx first: a benchmark of error answers would measure nothing."""
    import httpx

    response = httpx.post(url + body.path, content=body.data, timeout=60,
                          headers={"Content-Type": body.content_type, **dict(body.headers)})
    if response.status_code != 200:
        raise RuntimeError(f"{url}{body.path} answered {response.status_code}: {response.text[:500]}")
