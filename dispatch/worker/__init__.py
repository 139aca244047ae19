"""Background work: the outbox relay, job registry, scheduler, reconciler."""
