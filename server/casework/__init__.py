"""The dispatcher's and the officer's work on a case: parties, registry checks, eligibility,
hand-over, the event log and the determination."""
