"""kiebot: handlers."""
