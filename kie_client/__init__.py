"""kiebot: kie_client."""
