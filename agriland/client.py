"""`agriland client segment|cluster TILE...`: call a running agriland service over HTTP (httpx)."""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
from pathlib import Path

import httpx

from contract.atomic import write_bytes_atomic
from contract.errors import AgrilandError

DEFAULT_URL = "http://127.0.0.1:3000"


class AgrilandClient:
    """A thin typed wrapper over POST /segment and /cluster (multipart uploads)."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def __enter__(self) -> AgrilandClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, tiles: list[Path], fields: dict[str, str], **kwargs: object) -> httpx.Response:
        files = []
        for tile in tiles:
            if not tile.is_file():
                raise AgrilandError(f"{tile}: no such file")
            content_type = mimetypes.guess_type(tile.name)[0] or "application/octet-stream"
            files.append(("file", (tile.name, tile.read_bytes(), content_type)))
        try:
            response = self._http.post(path, files=files, data=fields, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as err:
            raise AgrilandError(f"cannot reach the agriland service at {self.url}: {err}") from err
        if response.status_code != 200:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            retry = response.headers.get("retry-after")
            hint = f" (retry after {retry} s)" if retry else ""
            raise AgrilandError(f"{path} answered {response.status_code}: {message}{hint}")
        return response

    def segment(self, tiles: list[Path], threshold: float | None = None, fit: str = "auto") -> dict:
        fields = {"fit": fit} | ({"threshold": str(threshold)} if threshold is not None else {})
        return self._post("/segment", tiles, fields).json()

    def segment_png(self, tile: Path, threshold: float | None = None, fit: str = "auto") -> bytes:
        fields = {"fit": fit} | ({"threshold": str(threshold)} if threshold is not None else {})
        return self._post("/segment", [tile], fields, headers={"Accept": "image/png"}).content

    def cluster(self, tiles: list[Path], top_k: int = 3, embedding: bool = False) -> dict:
        fields = {"top_k": str(top_k), "include_embedding": str(embedding).lower()}
        return self._post("/cluster", tiles, fields).json()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland client", description="Call a running agriland service.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    sub = parser.add_subparsers(dest="endpoint", required=True)
    seg = sub.add_parser("segment", help="arable mask of one or more tiles")
    seg.add_argument("tiles", nargs="+", type=Path)
    seg.add_argument("--threshold", type=float, default=None, help="default: the model's threshold")
    seg.add_argument("--fit", choices=["auto", "pad", "resize"], default="auto")
    seg.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the mask PNG here (one tile) or into this folder as <tile>.mask.png (several)",
    )
    clu = sub.add_parser("cluster", help="DEC cluster of one or more tiles")
    clu.add_argument("tiles", nargs="+", type=Path)
    clu.add_argument("--top-k", type=int, default=3)
    clu.add_argument("--embedding", action="store_true", help="include the embedding")
    return parser


def _write_masks(result: dict, tiles: list[Path], out: Path) -> list[Path]:
    written = []
    for tile, item in zip(tiles, result["results"]):
        target = out if len(tiles) == 1 and out.suffix.lower() == ".png" else out / f"{tile.stem}.mask.png"
        write_bytes_atomic(target, base64.b64decode(item["mask_png_base64"]))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Print a compact JSON summary per tile; with --out, also write the mask PNGs."""
    args = _parser().parse_args(argv)
    with AgrilandClient(args.url, args.timeout) as client:
        if args.endpoint == "segment":
            result = client.segment(args.tiles, args.threshold, args.fit)
            written = _write_masks(result, args.tiles, args.out) if args.out else []
            for item, path in zip(result["results"], written or [None] * len(result["results"])):
                summary = {k: item[k] for k in ("name", "width", "height", "threshold", "arable_fraction", "fit")}
                print(json.dumps(summary | ({"mask": str(path)} if path else {})))
        else:
            result = client.cluster(args.tiles, args.top_k, args.embedding)
            for item in result["results"]:
                print(json.dumps(item))
    return 0
