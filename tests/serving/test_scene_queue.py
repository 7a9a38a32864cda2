"""Scenes beyond the processing limit wait in a bounded queue, in order, with a readable place; past it, 503."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving.scene_queue import SceneQueue, parse_ticket
from serving.schemas import ApiError
from testkit.scene_files import write_scene


def test_queue_admits_running_plus_waiting_and_reports_places() -> None:
    async def scenario() -> None:
        queue = SceneQueue(max_running=1, max_waiting=2)
        order: list[str] = []
        release = asyncio.Event()

        async def scene(ticket: str) -> None:
            async with queue.admitted(ticket):
                async with queue.slot():
                    order.append(ticket)
                    await release.wait()

        tasks = [asyncio.create_task(scene(t)) for t in ("ticket-a1", "ticket-b2", "ticket-c3")]
        await asyncio.sleep(0.01)
        assert [queue.position(t)["state"] for t in ("ticket-a1", "ticket-b2", "ticket-c3")] == [
            "running",
            "waiting",
            "waiting",
        ]
        assert [queue.position(t)["position"] for t in ("ticket-b2", "ticket-c3")] == [1, 2]
        with pytest.raises(ApiError) as refused:
            async with queue.admitted("ticket-d4"):
                pass
        assert refused.value.status == 503 and refused.value.retry_after_s >= 1
        assert "1 scene(s) running and 2 waiting" in refused.value.message
        with pytest.raises(ApiError) as duplicate:
            async with queue.admitted("ticket-b2"):
                pass
        assert duplicate.value.status == 409
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["ticket-a1", "ticket-b2", "ticket-c3"]  # arrival order
        assert queue.position("ticket-a1")["state"] == "unknown" and queue.running == queue.waiting == 0

    asyncio.run(scenario())


def test_cancelled_waiter_leaves_the_queue() -> None:
    async def scenario() -> None:
        queue = SceneQueue(max_running=1, max_waiting=1)
        hold = asyncio.Event()

        async def scene(ticket: str) -> None:
            async with queue.admitted(ticket), queue.slot():
                await hold.wait()

        first = asyncio.create_task(scene("ticket-one"))
        second = asyncio.create_task(scene("ticket-two"))
        await asyncio.sleep(0.01)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert queue.waiting == 0 and queue.position("ticket-two")["state"] == "unknown"
        hold.set()
        await first

    asyncio.run(scenario())


@pytest.mark.parametrize("bad", ["short", "has space here", "x" * 65, "<script>alert</script>"])
def test_bad_tickets_are_refused(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_ticket(bad)
    assert err.value.status == 400


@pytest.mark.slow
def test_burst_waits_in_the_queue_and_only_past_it_gets_503(
    exported_models: Path, server_factory, poll_ready, tmp_path: Path
) -> None:  # noqa: ANN001
    server = server_factory(exported_models, env={"AGRILAND_MAX_SCENES": "1", "AGRILAND_MAX_SCENE_QUEUE": "2"})
    assert poll_ready(server.url) == 200
    scene = write_scene(tmp_path / "burst.tif", 700, 900).read_bytes()
    tickets = [f"burst-ticket-{k}" for k in range(5)]
    answers: dict[str, httpx.Response] = {}
    start = threading.Barrier(len(tickets))

    def post(ticket: str) -> None:
        start.wait()
        answers[ticket] = httpx.post(
            server.url + "/segment_scene",
            timeout=300,
            headers={"X-Agriland-Ticket": ticket},
            files={"file": ("burst.tif", scene, "image/tiff")},
            data={"bands": "sentinel2-10m", "mask_mode": "threshold"},
        )

    threads = [threading.Thread(target=post, args=(t,)) for t in tickets]
    for thread in threads:
        thread.start()
    seen: list[list[object]] = []
    while any(t.is_alive() for t in threads):
        places = [httpx.get(server.url + "/map/api/queue", params={"ticket": t}, timeout=10).json() for t in tickets]
        seen.append([(p["state"], p["position"]) for p in places])
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    refused = [t for t in tickets if answers[t].status_code == 503]
    served = [t for t in tickets if answers[t].status_code == 200]
    assert len(served) == 3 and len(refused) == 2, {t: answers[t].text[:200] for t in tickets}
    for ticket in refused:
        assert int(answers[ticket].headers["Retry-After"]) >= 1
        assert "scene queue is full" in answers[ticket].json()["error"]
    # at some moment one scene ran while the other two waited at places 1 and 2
    assert any(
        sorted(s for s in snapshot if s[0] != "unknown") == [("running", None), ("waiting", 1), ("waiting", 2)]
        for snapshot in seen
    ), seen[:20]
    # a refused scene asked again after its Retry-After is served
    retry = httpx.post(
        server.url + "/segment_scene",
        timeout=300,
        files={"file": ("burst.tif", scene, "image/tiff")},
        data={"bands": "sentinel2-10m", "mask_mode": "threshold"},
    )
    assert retry.status_code == 200
    assert retry.json()["summary"] == answers[served[0]].json()["summary"]
