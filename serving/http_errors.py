"""ASGI middleware: the router's plain-text 404/405 answers become the service's JSON error body."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PLAIN = (b"text/plain", b"text/html")


class JsonRouterErrors:
    """Rewrites 404/405 answers that are not JSON (unknown path, wrong method) as {"error", "status"}."""

    def __init__(self, app: ASGIApp, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting: dict[str, Any] = {}

        async def send_json(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (404, 405):
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(_PLAIN):
                    status = message["status"]
                    text = "Not Found" if status == 404 else "Method Not Allowed"
                    body = json.dumps({"error": f"{text}: {scope['method']} {scope['path']}", "status": status})
                    rewriting["body"] = body.encode()
                    kept = [
                        (k, v) for k, v in message.get("headers", []) if k not in (b"content-type", b"content-length")
                    ]
                    kept += [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(rewriting["body"])).encode()),
                    ]
                    await send({**message, "headers": kept})
                    return
            if rewriting and message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": rewriting["body"], "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, send_json)
