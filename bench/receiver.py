"""The webhook benchmark's receiver: answers 200 at once and notes when each event arrived.

A bare ASGI app under uvicorn, in its own process, so the receiver costs as little as a
receiver can; `GET /arrivals` hands back {event_id: unix time} for the latency rows.
"""

from __future__ import annotations

import json
import time
from typing import Any

arrivals: dict[str, float] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b""
    if scope["method"] == "POST" and body:
        event_id = json.loads(body).get("data", {}).get("event_id")
        if event_id:
            arrivals[event_id] = time.time()
    elif scope["path"] == "/arrivals":
        answer = json.dumps(arrivals).encode()
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
