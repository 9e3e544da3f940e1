"""The model catalog (see docs/architecture.md "kie_client"): data files in data/, read by
loader.py into ModelSpecs; Catalog prices them and builds KIE's inputs."""

from .core import Catalog, ModelDisabledError, RuntimeOverride
from .errors import (
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    MissingFieldError,
    PromptCharactersError,
    UnknownModelError,
)
from .loader import DATA_DIR, load_catalog, load_file
from .models import MODELS
from .spec import (
    APIS,
    AudioInputRule,
    ExtraField,
    ImageInputRule,
    Job,
    Kind,
    ModelSpec,
    Mode,
    OptionSpec,
    PriceFactor,
    PriceRule,
    PriceTier,
)
from .validate import kie_schema, spec_for_kie_model, validate_input

__all__ = [
    "APIS",
    "DATA_DIR",
    "MODELS",
    "AudioInputRule",
    "Catalog",
    "CatalogError",
    "ExtraField",
    "ImageInputError",
    "ImageInputRule",
    "InvalidOptionError",
    "InvalidPromptError",
    "Job",
    "Kind",
    "MissingFieldError",
    "ModelDisabledError",
    "ModelSpec",
    "Mode",
    "OptionSpec",
    "PriceFactor",
    "PromptCharactersError",
    "PriceRule",
    "PriceTier",
    "RuntimeOverride",
    "UnknownModelError",
    "kie_schema",
    "load_catalog",
    "load_file",
    "spec_for_kie_model",
    "validate_input",
]
