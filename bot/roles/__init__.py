"""The three model roles of the cycle: generator, discriminator and agitator."""

from bot.roles.agitator import Agitator
from bot.roles.discriminator import Discriminator
from bot.roles.generator import Generator

__all__ = ["Agitator", "Discriminator", "Generator"]
