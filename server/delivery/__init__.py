"""Getting the determination to the parties: SMS through a provider, with an outbox that retries."""
