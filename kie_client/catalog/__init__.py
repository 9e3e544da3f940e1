"""The model catalog (see docs/architecture.md "kie_client"); the table lives in models.py."""

from .core import Catalog
from .errors import (
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    MissingFieldError,
    PromptCharactersError,
    UnknownModelError,
)
from .models import MODELS
from .spec import AudioInputRule, ExtraField, ImageInputRule, Kind, ModelSpec, Mode, OptionSpec, PriceFactor
from .validate import spec_for_kie_model, validate_input

__all__ = [
    "MODELS",
    "AudioInputRule",
    "Catalog",
    "CatalogError",
    "ExtraField",
    "ImageInputError",
    "ImageInputRule",
    "InvalidOptionError",
    "InvalidPromptError",
    "Kind",
    "MissingFieldError",
    "ModelSpec",
    "Mode",
    "OptionSpec",
    "PriceFactor",
    "PromptCharactersError",
    "UnknownModelError",
    "spec_for_kie_model",
    "validate_input",
]
