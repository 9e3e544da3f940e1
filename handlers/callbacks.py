"""CallbackData factories: every button's data, in one module.

Telegram allows 64 bytes of callback data. aiogram packs only the prefix and the field values
(`prefix:value:value`), never the field names, so fields are named for the reader while the packed
strings stay as short as the values: prefixes of one or two letters, actions as short StrEnum
values, option names and values as indices (values such as "16:9" contain the ":" separator).
tests/unit/handlers/test_texts_keyboards.py packs the longest case of each and checks the limit.

Flow and option buttons carry the draft number, so a button from an older card is recognised as
stale instead of acting on the current draft (handlers.draft.current).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

# Bounds on every number a button carries. Button data comes from the user's client and can be
# forged: a number past what the field can mean (a row id past 64 bits, a page past any
# library) fails to unpack, so no handler matches and the fallback answers "this menu has
# expired" (handlers/fallback.py), as for any other forged button.
RowId = Annotated[int, Field(ge=0, lt=2**63)]  # generation ids: a BIGINT
DraftNo = Annotated[int, Field(ge=0, lt=2**63)]  # the draft counter in FSM data
Index = Annotated[int, Field(ge=-1, lt=2**15)]  # an option or value index, or OPEN_VALUES
Small = Annotated[int, Field(ge=0, lt=2**31)]  # pages, Stars and credits of a pack

from bot.services.followups import FollowAction
from kie_client.catalog import Job


class MenuAction(StrEnum):
    CREATE_IMAGE = "new"
    EDIT_PHOTO = "edit"
    ANIMATE_PHOTO = "anim"
    TEXT_TO_VIDEO = "t2v"
    TALKING_PHOTO = "talk"
    TOOLS = "tools"
    # The main menu before jobs: buttons still in people's chats open the nearest job.
    IMAGES = "img"
    VIDEOS = "vid"
    BALANCE = "bal"
    LIBRARY = "lib"
    HELP = "help"
    HOME = "home"
    TOP_UP = "topup"


class MenuCb(CallbackData, prefix="m"):
    """A main-menu section (or the top-up packs, reached from the balance and the summary card)."""

    action: MenuAction


JOB_ACTIONS = {
    MenuAction.CREATE_IMAGE: Job.CREATE_IMAGE,
    MenuAction.EDIT_PHOTO: Job.EDIT_PHOTO,
    MenuAction.ANIMATE_PHOTO: Job.ANIMATE_PHOTO,
    MenuAction.TEXT_TO_VIDEO: Job.TEXT_TO_VIDEO,
    MenuAction.TALKING_PHOTO: Job.TALKING_PHOTO,
    MenuAction.TOOLS: Job.TOOLS,
    MenuAction.IMAGES: Job.CREATE_IMAGE,
    MenuAction.VIDEOS: Job.TEXT_TO_VIDEO,
}
ACTION_OF_JOB = {job: action for action, job in list(JOB_ACTIONS.items())[:6]}
# Jobs in callback data by their one-letter code (64 bytes of callback data in all).
JOB_CODES = {"create_image": "c", "edit_photo": "e", "animate_photo": "a", "text_to_video": "v",
             "talking_photo": "t", "tools": "x"}
JOB_OF_CODE = {code: Job(job) for job, code in JOB_CODES.items()}


class PickCb(CallbackData, prefix="p"):
    """Pick a model; `source_id` > 0 is the generation to animate (ownership checked on use)."""

    model: str
    source_id: RowId = 0


class JobPickCb(CallbackData, prefix="pj"):
    """Pick a model in a menu section: `job` is its JOB_CODES letter (remembered as that job's
    last model). PickCb stays for buttons sent before sections existed."""

    model: str
    job: str
    source_id: int = 0


OPEN_VALUES = -1  # OptCb.value that opens an option's list of values instead of choosing one


class OptCb(CallbackData, prefix="o"):
    """An option button: `option` and `value` are indices into the model's options and values."""

    draft: DraftNo
    option: Index
    value: Index = OPEN_VALUES


class FlowAction(StrEnum):
    NEXT = "next"
    BACK = "back"
    CANCEL = "cancel"
    GENERATE = "go"
    OPTIONS = "opts"
    PROMPT = "prompt"
    MODEL = "model"


class FlowCb(CallbackData, prefix="f"):
    """Navigation within a draft (its steps, the summary card's Generate and edit buttons)."""

    draft: DraftNo
    action: FlowAction


class GenAction(StrEnum):
    CANCEL = "x"
    AGAIN = "again"
    ORIGINAL = "doc"
    ANIMATE = "anim"
    SHOW = "show"


class GenCb(CallbackData, prefix="g"):
    """An action on a stored generation (ownership checked on use)."""

    action: GenAction
    generation_id: RowId


class LibCb(CallbackData, prefix="l"):
    """A library page, 0-based."""

    page: Small


class PackCb(CallbackData, prefix="t"):
    """A top-up pack, named by its numbers so a changed configuration makes old buttons stale."""

    stars: Small
    credits: Small


class LangCb(CallbackData, prefix="lg"):
    """A language code; the handler checks it against handlers.texts.LANGUAGES."""

    language: str


class SelfTestCb(CallbackData, prefix="st"):
    """An admin self-test of one catalog model."""

    model: str


# photo templates (issue 14)
class TplAction(StrEnum):
    OPEN = "o"  # the main menu's button: the gallery from its first card
    PAGE = "p"  # ◀ ▶: the card at `index` (wrapping around)
    USE = "u"  # order template `key` at `price` (the price the button showed)
    CANCEL = "x"  # stop waiting for the photo(s)


class TplCb(CallbackData, prefix="tp"):
    """A photo template button. Use names the template by key (a card outlives reordering) and
    carries the price it showed, so a changed price is noticed before any charge."""

    action: TplAction
    index: Small = 0
    key: str = ""
    price: Small = 0
# prompt helper (issue 14)
class AssistAction(StrEnum):
    IMPROVE = "imp"  # ✨ Improve on the card
    ACCEPT = "ok"  # use the improved prompt
    EDIT = "ed"  # type your own version
    KEEP = "keep"  # keep the original
    SWITCH = "sw"  # the model's own prompt switch (Veo enableTranslation…) on the card


class AssistCb(CallbackData, prefix="ph"):
    """The prompt helper's buttons on a draft's card (stale when `draft` is an older one)."""

    draft: DraftNo
    action: AssistAction
# follow-ups and variants (issue 14)
class FollowCb(CallbackData, prefix="fu"):
    """A follow-up under a result (bot/services/followups.FollowAction); ownership, the result's
    state and the follow-up's model are checked on use, so a stale or forged one is "expired"."""

    action: FollowAction
    generation_id: RowId


class VariantsCb(CallbackData, prefix="vn"):
    """The card's "Variants: 1 2 3 4" row: how many pictures one Generate makes."""

    draft: DraftNo
    n: Annotated[int, Field(ge=1, le=4)]
# referrals, promo codes, daily free (issue 14)
class RefAction(StrEnum):
    INVITE = "inv"
    PROMO = "promo"


class RefCb(CallbackData, prefix="rf"):
    """The balance screen's "Invite friends" and "Promo code" buttons."""

    action: RefAction
# broadcast and support (issue 14)
class BcAction(StrEnum):
    SKIP = "skip"  # no link button
    SEGMENT = "seg"
    SEND = "send"
    PAUSE = "pause"
    RESUME = "res"
    CANCEL = "cancel"  # a draft or a running broadcast
    ABORT = "abort"  # composing, before any draft exists


class BcSegment(StrEnum):
    NONE = ""
    ALL = "all"
    PAYING = "paying"
    RU = "ru"
    EN = "en"
    ACTIVE = "active"  # asks for the number of days
    BALANCE = "balance"  # asks for the minimum balance


class BcCb(CallbackData, prefix="bc"):
    """An admin's /broadcast buttons: composing (skip, segment, abort) and a broadcast's card."""

    action: BcAction
    broadcast_id: RowId = 0
    segment: BcSegment = BcSegment.NONE
