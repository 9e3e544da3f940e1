"""kiebot: bot."""
