"""The jobs behind the commands (train, predict, evaluate, merge, the container entry point)."""

from esa_lightning.jobs.paths import register_resolvers

register_resolvers()
