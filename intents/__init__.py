"""Small talk and service intents: greetings, thanks, asking for a person, frustration."""
