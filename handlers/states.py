"""FSM states of the generation draft. The draft itself lives in FSM data (see handlers.draft)."""

from aiogram.fsm.state import State, StatesGroup


class Draft(StatesGroup):
    options = State()
    photo = State()
    audio = State()
    prompt = State()
    confirm = State()
