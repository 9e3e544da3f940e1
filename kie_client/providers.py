"""One interface over KIE's API shapes, so the pipeline never asks which shape a model uses.

A provider turns (model spec, the catalog's input, callback URL) into a task id, a task id into a
normalised `TaskRecord` (state waiting/queuing/generating/success/fail, result URLs, fail code),
and a callback body into a `CallbackPayload`. `ModelSpec.api` names the provider. Adding another
shape (Suno, Runway) is a class with these three methods registered in `Providers`, plus catalog
data with that `api`; nothing in the pipeline, the callback route or the handlers changes.

Errors are the client's (`KieError` tree): `submit` raises `KieSubmissionUnknownError` when a task
may have been created, so the pipeline's exactly-once rules hold for every shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from .callbacks import parse_callback
from .catalog.spec import ModelSpec
from .client import KieClient
from .types import CallbackPayload, TaskRecord
from .veo import VeoClient, parse_veo_callback

__all__ = ["DEFAULT_API", "MarketProvider", "Provider", "Providers", "UnknownProviderError",
           "VeoProvider"]

DEFAULT_API = "market"


@runtime_checkable
class Provider(Protocol):
    name: str

    async def submit(self, spec: ModelSpec, input: dict[str, Any], callback_url: str | None) -> str:
        """Create the task; its id."""

    async def fetch(self, task_id: str) -> TaskRecord:
        """The task as it stands now."""

    def parse_callback(self, body: bytes) -> CallbackPayload:
        """A callback body of this shape (KieResponseError when malformed)."""


class UnknownProviderError(ValueError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"no KIE provider {name!r} (known: {', '.join(sorted(known))})")
        self.name = name


class MarketProvider:
    """The Market jobs API: createTask {model, input, callBackUrl} / recordInfo."""

    name = "market"

    def __init__(self, kie: KieClient) -> None:
        self.kie = kie

    async def submit(self, spec: ModelSpec, input: dict[str, Any], callback_url: str | None) -> str:
        created = await self.kie.create_task(spec.kie_model, input, callback_url=callback_url)
        return created.task_id

    async def fetch(self, task_id: str) -> TaskRecord:
        return await self.kie.get_task(task_id)

    def parse_callback(self, body: bytes) -> CallbackPayload:
        return parse_callback(body)


class VeoProvider:
    """Veo 3.1's routes: the catalog's input is the body's fields; the model id, the callback URL
    and the generation type (by whether images were given) are added here."""

    name = "veo"

    def __init__(self, kie: KieClient) -> None:
        self.veo = VeoClient(kie)

    @staticmethod
    def body(spec: ModelSpec, input: dict[str, Any], callback_url: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": spec.kie_model, **input}
        body["generationType"] = ("FIRST_AND_LAST_FRAMES_2_VIDEO" if input.get("imageUrls")
                                  else "TEXT_2_VIDEO")
        if callback_url:
            body["callBackUrl"] = callback_url
        return body

    async def submit(self, spec: ModelSpec, input: dict[str, Any], callback_url: str | None) -> str:
        created = await self.veo.generate(self.body(spec, input, callback_url))
        return created.task_id

    async def fetch(self, task_id: str) -> TaskRecord:
        return await self.veo.record_info(task_id)

    def parse_callback(self, body: bytes) -> CallbackPayload:
        return parse_veo_callback(body)


class Providers:
    """The providers by name; `for_client(kie)` gives every shape this client speaks."""

    def __init__(self, providers: Iterable[Provider]) -> None:
        self._by_name = {p.name: p for p in providers}
        if DEFAULT_API not in self._by_name:
            raise ValueError("Providers needs the market provider")

    @classmethod
    def for_client(cls, kie: KieClient) -> Providers:
        return cls([MarketProvider(kie), VeoProvider(kie)])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str | None) -> Provider:
        try:
            return self._by_name[name or DEFAULT_API]
        except KeyError:
            raise UnknownProviderError(str(name), self._by_name) from None

    def for_spec(self, spec: ModelSpec) -> Provider:
        return self.get(spec.api)
