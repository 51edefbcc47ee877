"""Model servers by the API they speak: `ollama` (native /api/chat) or `openai` (/v1/chat/completions).

`build_llm` reads AURA_LLM_PROVIDER and the per-role overrides (AURA_GENERATOR_PROVIDER, ...): one
client per provider in use, and a `RoleRouter` in front of them when the roles do not all use the same.
"""

from __future__ import annotations

from bot.config import ROLES, Settings
from bot.llm.client import ChatLLM, ModelClient
from bot.llm.providers.ollama import OllamaLLM
from bot.llm.providers.openai import OpenAILLM

PROVIDERS: dict[str, type[ChatLLM]] = {"ollama": OllamaLLM, "openai": OpenAILLM}


def build_llm(settings: Settings) -> ModelClient:
    """The LLM client for these settings: one provider's, or a router when the roles differ."""
    wanted = {role: settings.provider_for(role) for role in ROLES}
    clients: dict[str, ChatLLM] = {name: PROVIDERS[name].from_settings(settings) for name in dict.fromkeys(wanted.values())}
    if len(clients) == 1:
        return next(iter(clients.values()))
    return RoleRouter({role: clients[name] for role, name in wanted.items()})


class RoleRouter:
    """Several providers behind one client: each role gets its own provider's client from `for_role`."""

    def __init__(self, by_role: dict[str, ChatLLM]) -> None:
        self.by_role = by_role

    def for_role(self, role: str) -> ChatLLM:
        return self.by_role[role]

    async def aclose(self) -> None:
        for client in {id(c): c for c in self.by_role.values()}.values():
            await client.aclose()

    async def __aenter__(self) -> RoleRouter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


__all__ = ["PROVIDERS", "OllamaLLM", "OpenAILLM", "RoleRouter", "build_llm"]
