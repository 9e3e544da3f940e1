"""Photo templates as data: bot/templates/data/templates.toml and its example pictures.

Plain data and the standard library (plus the catalog's specs), so bot.config can check the
file before anything heavy loads. The service that sells them is bot/services/templates.py.
"""

from bot.templates.loader import (
    DATA_FILE,
    EXAMPLES_DIR,
    MAX_PRICE,
    Template,
    TemplateError,
    check_template,
    load_templates,
    placeholders_of,
)

__all__ = ["DATA_FILE", "EXAMPLES_DIR", "MAX_PRICE", "Template", "TemplateError", "check_template",
           "load_templates", "placeholders_of"]
