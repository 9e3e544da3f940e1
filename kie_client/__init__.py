"""kiebot: kie_client — everything about KIE.ai (HTTP client, errors, callbacks, catalog).

Imports nothing else of ours. Re-exports the public names below.
"""

from .callbacks import (
    check_callback_token,
    make_callback_token,
    parse_callback,
    sign_webhook,
    verify_webhook_signature,
)
from .client import KieClient
from .errors import (
    KieAPIStatusError,
    KieAuthError,
    KieConnectionError,
    KieError,
    KieFeatureDisabledError,
    KieGenerationFailedError,
    KieInsufficientCreditsError,
    KieMaintenanceError,
    KieNotFoundError,
    KieQuotaExceededError,
    KieRateLimitError,
    KieResponseError,
    KieServerError,
    KieSubmissionUnknownError,
    KieTaskNotFoundError,
    KieTimeoutError,
    KieUpstreamTimeoutError,
    KieUploadError,
    KieValidationError,
    error_for,
)
from .ratelimit import NoLimit, PausableLimiter, RateLimiter, SlidingWindowLimiter
from .retry import RetryPolicy
from .types import CallbackPayload, TaskCreated, TaskRecord, TaskState, UploadedFile
from .veo import VeoClient, parse_veo_callback
from .chat import ChatClient, ChatCompletion
from .providers import MarketProvider, Provider, Providers, UnknownProviderError, VeoProvider
from .catalog import (
    AudioInputRule,
    Catalog,
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    Kind,
    Mode,
    ModelSpec,
    OptionSpec,
    PromptCharactersError,
    UnknownModelError,
)
