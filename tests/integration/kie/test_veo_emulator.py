"""Veo 3.1 through KIE's dedicated routes: VeoClient and the providers against the running
KieEmulator over real HTTP on loopback (bodies, status codes, successFlag, callbacks, 1080p/4K)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from kie_client import (
    Catalog,
    KieInsufficientCreditsError,
    KieSubmissionUnknownError,
    KieTaskNotFoundError,
    KieValidationError,
    TaskState,
    verify_webhook_signature,
)
from kie_client.providers import MarketProvider, Providers, VeoProvider
from kie_client.veo import VeoClient, parse_veo_callback
from tests.integration.kie.test_client_emulator import (  # noqa: F401 - fixtures
    HMAC_KEY,
    client_for,
    emulator,
    receiver,
)

PROMPT = "a paper boat sailing down a rainy street"


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        resp = await http.get(url)
        resp.raise_for_status()
        return resp.content


async def final_record(veo: VeoClient, task_id: str):
    seen = []
    for _ in range(200):
        record = await veo.record_info(task_id)
        seen.append(record.state)
        if record.is_final:
            return record, seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"veo task {task_id} never finished: {seen}")


async def test_text_to_video_flow_with_callback_in_veo_shape(emulator, receiver):
    catalog = Catalog()
    spec = catalog.get("veo31_fast")
    async with client_for(emulator) as client:
        provider = Providers.for_client(client).for_spec(spec)
        assert isinstance(provider, VeoProvider)
        before = emulator.credits
        task_id = await provider.submit(spec, catalog.build_input(spec.key, PROMPT, {}),
                                        receiver.url + "/kie/callback/7?api=veo")
        sent = [r for r in emulator.requests if r.path == "/api/v1/veo/generate"][-1].json
        assert sent == {"model": "veo3_fast", "prompt": PROMPT, "aspect_ratio": "16:9",
                        "resolution": "720p", "enableTranslation": True,
                        "generationType": "TEXT_2_VIDEO",
                        "callBackUrl": receiver.url + "/kie/callback/7?api=veo"}
        record, seen = await final_record(provider.veo, task_id)
        assert seen[0] is not TaskState.SUCCESS and record.state is TaskState.SUCCESS
        assert record.model == "veo3_fast" and len(record.result_urls) == 1
        assert emulator.credits == before - 60  # KIE's Fast 720p price
        video = await download(record.result_urls[0])
        assert video[4:8] == b"ftyp"  # a real MP4
        await emulator.drain_callbacks()
    body, headers = receiver.calls[0]
    assert b'"info"' in body and b'"successFlag"' not in body  # Veo's callback, not recordInfo
    cb = provider.parse_callback(body)
    assert cb.task_id == task_id and cb.code == 200 and cb.state is TaskState.SUCCESS
    assert cb.record.result_urls == record.result_urls
    assert verify_webhook_signature(HMAC_KEY, cb.task_id, headers.get("X-Webhook-Timestamp"),
                                    headers.get("X-Webhook-Signature"))


async def test_first_and_last_frame_from_two_uploaded_photos(emulator):
    catalog = Catalog()
    spec = catalog.get("veo31_lite")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    async with client_for(emulator) as client:
        urls = [(await client.upload_stream(png, upload_path="kiebot/1", file_name=f"{i}.png",
                                            mime_type="image/png")).download_url for i in range(2)]
        body = catalog.build_input(spec.key, PROMPT, {"aspect_ratio": "9:16", "resolution": "1080p"},
                                   image_urls=urls)
        task_id = await VeoProvider(client).submit(spec, body, None)
        record, _ = await final_record(VeoClient(client), task_id)
    task = emulator.tasks[task_id]
    assert task.input["imageUrls"] == urls and task.cost == 35
    assert record.state is TaskState.SUCCESS
    sent = [r for r in emulator.requests if r.path == "/api/v1/veo/generate"][-1].json
    assert sent["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO" and "callBackUrl" not in sent


GOOD = {"prompt": PROMPT, "model": "veo3_fast", "aspect_ratio": "16:9", "resolution": "720p"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"prompt": None}, "prompt is required"),
    ({"prompt": ""}, "prompt"),
    ({"model": "veo2"}, "model must be one of"),
    ({"aspect_ratio": "1:1"}, "aspect_ratio"),
    ({"resolution": "8k"}, "resolution"),
    ({"enableTranslation": "yes"}, "enableTranslation"),
    ({"imageUrls": ["https://x.example/a.png"] * 3}, "1 or 2 images"),
    ({"imageUrls": "https://x.example/a.png"}, "imageUrls must be an array"),
    ({"generationType": "TEXT_2_VIDEO", "imageUrls": ["https://x.example/a.png"]}, "no imageUrls"),
    ({"generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO"}, "requires 1-2 images"),
    ({"generationType": "REFERENCE_2_VIDEO", "model": "veo3",
      "imageUrls": ["https://x.example/a.png"]}, "only supports veo3_fast"),
    ({"generationType": "REFERENCE_2_VIDEO", "aspect_ratio": "Auto",
      "imageUrls": ["https://x.example/a.png"]}, "16:9 and 9:16"),
    ({"generationType": "IMAGE_2_VIDEO"}, "generationType must be one of"),
    ({"callBackUrl": "ftp://bot.example/cb"}, "callBackUrl"),
    ({"seeds": 5}, "seeds"),
    ({"duration": "8"}, "duration is not a field"),
])
async def test_each_documented_violation_is_refused_with_422(emulator, change, reason):
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    async with client_for(emulator) as client:
        with pytest.raises(KieValidationError) as caught:
            await VeoClient(client).generate(body)
    assert caught.value.body_code == 422 and reason in caught.value.message
    assert not emulator.tasks


async def test_accepted_variants(emulator):
    async with client_for(emulator) as client:
        veo = VeoClient(client)
        for extra in ({"generationType": "REFERENCE_2_VIDEO", "imageUrls": ["https://x.example/a.png"] * 3},
                      {"watermark": "kiebot", "enableTranslation": False, "seeds": 12345},
                      {"aspect_ratio": "Auto", "resolution": "4k", "model": "veo3"}):
            await veo.generate({**GOOD, **extra})
    assert len(emulator.tasks) == 3


async def test_failed_generation_reads_as_fail_and_calls_back_with_its_code(emulator, receiver):
    emulator.faults.fail_next = 1
    emulator.faults.fail_code = "400"
    emulator.faults.fail_msg = "Your prompt was flagged by Website as violating content policies."
    async with client_for(emulator) as client:
        veo = VeoClient(client)
        created = await veo.generate({**GOOD, "callBackUrl": receiver.url + "/kie/callback/9"})
        record, _ = await final_record(veo, created.task_id)
        await emulator.drain_callbacks()
    assert record.state is TaskState.FAIL and record.fail_code == "400"
    assert "flagged" in record.fail_msg and not record.result_urls
    cb = parse_veo_callback(receiver.calls[0][0])
    assert cb.code == 400 and cb.state is TaskState.FAIL and "flagged" in cb.msg


async def test_1080p_is_processing_first_then_served_and_4k_is_billed_once(emulator):
    async with client_for(emulator) as client:
        veo = VeoClient(client)
        created = await veo.generate(GOOD)
        await final_record(veo, created.task_id)
        before = emulator.credits
        assert await veo.get_1080p_video(created.task_id) is None  # "1080P is processing"
        hd = await veo.get_1080p_video(created.task_id)
        assert hd and (await download(hd))[4:8] == b"ftyp"
        uhd = await veo.get_4k_video(created.task_id)
        again = await veo.get_4k_video(created.task_id)
        assert uhd == again and (await download(uhd[0]))[4:8] == b"ftyp"
        record = await veo.record_info(created.task_id)
    assert emulator.credits == before - 5 - 120
    assert len(record.result_urls) == 1  # the follow-ups are not the task's results


async def test_errors_are_the_market_clients(emulator):
    async with client_for(emulator) as client:
        veo = VeoClient(client)
        with pytest.raises(KieTaskNotFoundError):
            await veo.record_info("0" * 32)
        emulator.faults.create_errors, emulator.faults.create_error_code = 1, 500
        with pytest.raises(KieSubmissionUnknownError):  # never retried: a task may exist
            await veo.generate(GOOD)
        emulator.faults.create_errors, emulator.faults.create_error_code = 1, 429
        created = await veo.generate(GOOD)  # 429 is retried: nothing was created
        assert list(emulator.tasks) == [created.task_id]
        emulator.credits = Decimal(10)
        with pytest.raises(KieInsufficientCreditsError):
            await veo.generate(GOOD)


async def test_market_route_refuses_a_veo_model_and_market_provider_still_works(emulator):
    catalog = Catalog()
    async with client_for(emulator) as client:
        with pytest.raises(KieValidationError):
            await client.create_task("veo3_fast", {"prompt": PROMPT})
        spec = catalog.get("seedream_45_t2i")
        provider = Providers.for_client(client).for_spec(spec)
        assert isinstance(provider, MarketProvider)
        task_id = await provider.submit(spec, catalog.build_input(spec.key, PROMPT, {}), None)
        assert (await provider.fetch(task_id)).task_id == task_id


async def test_fault_knobs_work_for_veo_tasks(emulator, receiver):
    """Set from another process's side (the control route), as the e2e tests and the bench do."""
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{emulator.base_url}/_emulator/faults",
                               json={"callback_copies": 2, "record_lag": 30.0,
                                     "expire_results": True})
        assert resp.status_code == 200
    async with client_for(emulator) as client:
        veo = VeoClient(client)
        created = await veo.generate({**GOOD, "callBackUrl": receiver.url + "/kie/callback/3"})
        task = await emulator.wait_final(created.task_id)
        assert (await veo.record_info(created.task_id)).state is TaskState.GENERATING  # lagging
        await emulator.drain_callbacks()
        assert len(receiver.calls) == 2  # the callback, duplicated
        url = parse_veo_callback(receiver.calls[0][0]).record.result_urls[0]
        with pytest.raises(httpx.HTTPStatusError):  # the original link expired...
            await download(url)
        fresh = await client.get_download_url(url)  # ...a fresh one works
        assert (await download(fresh))[4:8] == b"ftyp"

        emulator.faults.update({"callback_copies": 1, "record_lag": 0.0, "drop_callbacks": 1,
                                "fail_models": ["veo3_fast"]})
        dropped = await veo.generate({**GOOD, "callBackUrl": receiver.url + "/kie/callback/4"})
        record, _ = await final_record(veo, dropped.task_id)
        await emulator.drain_callbacks()
    assert record.state is TaskState.FAIL and task.api == "veo"
    assert len(receiver.calls) == 2  # the second task's callback was dropped
    assert any(a.dropped and a.task_id == dropped.task_id for a in emulator.callbacks)
