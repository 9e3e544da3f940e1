"""One-tap follow-ups under a delivered image: Upscale, Remove background and Redo with a
better model start at once; Edit this and Animate open a draft (the handlers) whose Generate
charges as any card does. Prices come from the live catalog, so the button says what a tap costs.

Exactly once: the request key of a one-tap follow-up is (source generation, action), and
`generations.request_key` is unique per user in the database (uq_generations_user_request): a
triple tap, two processes or a replayed update all find the first row, and nothing is charged
twice. The input is always OUR stored copy (the result's `stored_paths`, or the source row's
stored input photos for a redo), never KIE's expiring URL: the submitter uploads it afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kie_client.catalog import Catalog, CatalogError, Job, Kind, ModelSpec
from kie_client.catalog.followups import FollowupPlan, load_followups
from storage.media import MediaStoreError
from storage.models import Generation, GenerationStatus

from bot.services.generation import GenerationService, SourceImage, SourceImageError, Started
from bot.services.pipeline.context import SOURCE_MIME_KEY, SOURCE_MIMES_KEY, SOURCE_PATH_KEY, SOURCE_PATHS_KEY


class FollowAction(StrEnum):
    EDIT = "ed"
    UPSCALE = "up"
    REMOVE_BG = "bg"
    BETTER = "bt"


ONE_TAP = (FollowAction.UPSCALE, FollowAction.REMOVE_BG, FollowAction.BETTER)


@dataclass(frozen=True)
class Offer:
    action: FollowAction
    model_key: str
    name: str
    price: int
    options: dict


class StaleFollowupError(Exception):
    """Not this user's result, not a finished image, or the follow-up is no longer on sale."""


def request_key(generation_id: int, action: FollowAction) -> str:
    return f"fu:{generation_id}:{action.value}"


class FollowupOffers:
    """What the result keyboard shows: needs only the live catalog (prices, models on sale), so
    the presenter holds one without the pipeline."""

    def __init__(self, catalog: Catalog, plan: FollowupPlan | None = None) -> None:
        self.catalog = catalog
        self.plan = plan if plan is not None else load_followups()

    def again_price(self, g: Generation) -> int | None:
        """The price of the same model and options now (None: the model is gone or off)."""
        try:
            spec = self.catalog.get(g.model_key)
            if not self.catalog.sellable(spec.key):
                return None
            return self.catalog.price(spec.key, _known_options(spec, g.options))
        except CatalogError:
            return None

    def animate_price(self, g: Generation) -> int | None:
        """The cheapest animate-a-photo model that takes this one picture (the picker's list)."""
        if not _usable_image(g):
            return None
        prices = [self.catalog.from_price(m.key)
                  for m in self.catalog.models(job=Job.ANIMATE_PHOTO, enabled_only=True)
                  if m.image_input is not None and m.image_input.min_count == 1]
        return min(prices) if prices else None

    def offers(self, g: Generation) -> list[Offer]:
        """The follow-ups on sale for this result, in button order."""
        if not _usable_image(g):
            return []
        wanted = [
            (FollowAction.EDIT, self.plan.edit_model(g.model_key), {}),
            (FollowAction.UPSCALE, self.plan.tools.get("upscale"), {}),
            (FollowAction.REMOVE_BG, self.plan.tools.get("remove_bg"), {}),
        ]
        better = self.plan.better.get(g.model_key)
        if better:
            wanted.append((FollowAction.BETTER, better, g.options or {}))
        found = []
        for action, key, carried in wanted:
            offer = self._offer(action, key, carried, g)
            if offer is not None:
                found.append(offer)
        return found

    def _offer(self, action: FollowAction, key: str | None, carried: dict,
               g: Generation) -> Offer | None:
        if not key or action in (FollowAction.UPSCALE, FollowAction.REMOVE_BG) and key == g.model_key:
            return None  # no tool on its own output: "remove the background" twice is the same
        try:
            spec = self.catalog.get(key)
            if not self.catalog.sellable(key):
                return None
            if action is FollowAction.BETTER and len(_source_inputs(g)) > _max_images(spec):
                return None  # the stronger model cannot take all of the request's photos
            options = self.catalog.normalise_options(key, _known_options(spec, carried))
            return Offer(action, key, spec.name, self.catalog.price(key, options), options)
        except CatalogError:
            return None



class FollowupService:
    """Runs a follow-up a handler was asked for."""

    def __init__(self, generations: GenerationService, offers: FollowupOffers | None = None) -> None:
        self.generations = generations
        self.catalog: Catalog = generations.catalog
        self.menu = offers if offers is not None else FollowupOffers(self.catalog)

    async def offer(self, *, user_id: int, generation_id: int, action: FollowAction
                    ) -> tuple[Generation, Offer]:
        """This user's result and the follow-up as on sale now; StaleFollowupError otherwise."""
        g = await self.generations.get(user_id=user_id, generation_id=generation_id)
        if g is None:
            raise StaleFollowupError()
        offer = next((o for o in self.menu.offers(g) if o.action == action), None)
        if offer is None:
            raise StaleFollowupError()
        return g, offer

    # -- a one-tap follow-up -------------------------------------------------------------------

    async def run(self, *, g: Generation, offer: Offer, chat_id: int,
                  progress_message_id: int | None = None) -> Started:
        """Charge once and queue. Raises what GenerationService.start raises."""
        if offer.action not in ONE_TAP:
            raise StaleFollowupError()
        spec = self.catalog.get(offer.model_key)
        images: list[SourceImage] = []
        source_generation_id = None
        if offer.action is FollowAction.BETTER:
            images = await self._stored_inputs(g)  # the same photos the first request had
            prompt = g.prompt or ""
        else:
            source_generation_id = g.id  # the result itself: start() reads our stored copy
            prompt = ""
        return await self.generations.start(
            user_id=g.user_id, chat_id=chat_id, model_key=spec.key, options=offer.options,
            prompt=prompt, request_key=request_key(g.id, offer.action), source_images=images,
            source_generation_id=source_generation_id, progress_message_id=progress_message_id,
            expected_cost=offer.price,
        )

    async def cancel_rest_of_order(self, g: Generation) -> int:
        """After the lead of a variant order was cancelled: cancel its other rows still waiting
        in line (each refunded once, as any cancel); returns the ⭐ refunded for them. Rows
        already sent to KIE run on and come in the order's album."""
        options = g.options or {}
        count = options.get("_variants")
        if not isinstance(count, int) or count < 2 or options.get("_variant") != 1:
            return 0
        refunded = 0
        rows = await self.generations.repository.variant_rows(g.user_id, g.request_key, count)
        for row in rows[1:]:
            if await self.generations.cancel(user_id=g.user_id, generation_id=row.id):
                refunded += row.cost
        return refunded

    async def _stored_inputs(self, g: Generation) -> list[SourceImage]:
        found = []
        for path, mime in _source_inputs(g):
            try:
                data = await self.generations.pipeline.media.read(path)
            except MediaStoreError:
                raise SourceImageError("that picture is no longer stored") from None
            found.append(SourceImage(data=data, mime_type=mime, file_name=path.rsplit("/", 1)[-1]))
        return found


def _usable_image(g: Generation) -> bool:
    return (g.kind == Kind.IMAGE and g.status == GenerationStatus.succeeded
            and bool(g.stored_paths))


def _known_options(spec: ModelSpec, options: dict | None) -> dict:
    """The options `spec` has, with values it takes (the service's own `_` keys dropped)."""
    kept = {}
    for name, value in (options or {}).items():
        option = spec.option(name)
        if option is not None and value in option.values:
            kept[name] = value
    return kept


def _max_images(spec: ModelSpec) -> int:
    return spec.image_input.max_count if spec.image_input is not None else 0


def _source_inputs(g: Generation) -> list[tuple[str, str]]:
    options = g.options or {}
    paths = options.get(SOURCE_PATHS_KEY)
    if paths:
        mimes = list(options.get(SOURCE_MIMES_KEY) or [])
        return [(p, mimes[i] if i < len(mimes) else "image/jpeg") for i, p in enumerate(paths)]
    path = options.get(SOURCE_PATH_KEY)
    return [(path, options.get(SOURCE_MIME_KEY) or "image/jpeg")] if path else []
