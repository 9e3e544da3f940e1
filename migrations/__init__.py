"""kiebot: migrations."""
