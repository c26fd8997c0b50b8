"""The tickets service: list tickets for sale and edit them; publishes ticket events."""
