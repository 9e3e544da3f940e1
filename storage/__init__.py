"""kiebot: storage."""
