"""The conversation core: states, intents, the flow table, intake, triage and replies as plain data."""
