"""Every model client has the signatures of the protocols the roles are typed against (bot/llm/client.py).

The SWE-bench oracle answers the roles without a server; when `ChatLLM.structured` gained a parameter
the oracle did not, episodes of the oracle failed at run time. Comparing each implementation with the
protocol catches such a drift here, without a type checker and before anything runs.
"""

from __future__ import annotations

import inspect

import pytest

from bot.llm.client import ChatLLM, ModelClient, RoleModel
from bot.llm.providers import RoleRouter
from bot.llm.providers.ollama import OllamaLLM
from bot.llm.providers.openai import OpenAILLM
from bot.runs.swebench.oracle import OracleLLM

ROLE_MODELS = [ChatLLM, OllamaLLM, OpenAILLM, OracleLLM]
MODEL_CLIENTS = [ChatLLM, RoleRouter, OracleLLM]


def members(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")]


def drift(protocol: type, implementation: type) -> list[str]:
    """How `implementation` differs from `protocol`: missing methods, sync for async, other parameters.
    A method may return a narrower type than the protocol's (`for_role` returns its own class)."""
    found = []
    for name in members(protocol):
        wanted = getattr(protocol, name)
        have = getattr(implementation, name, None)
        if have is None:
            found.append(f"{implementation.__name__} has no {name}")
            continue
        if inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(have):
            found.append(f"{implementation.__name__}.{name} is {'not ' if inspect.iscoroutinefunction(wanted) else ''}async")
        expected, actual = inspect.signature(wanted), inspect.signature(have)
        if list(expected.parameters.values()) != list(actual.parameters.values()):
            found.append(f"{implementation.__name__}.{name}{actual} differs from the protocol's {name}{expected}")
        if name != "for_role" and expected.return_annotation != actual.return_annotation:
            found.append(f"{implementation.__name__}.{name} returns {actual.return_annotation}, "
                         f"not {expected.return_annotation}")
    return found


@pytest.mark.parametrize("implementation", ROLE_MODELS, ids=lambda c: c.__name__)
def test_each_role_model_has_the_protocols_signatures(implementation):
    assert drift(RoleModel, implementation) == []


@pytest.mark.parametrize("implementation", MODEL_CLIENTS, ids=lambda c: c.__name__)
def test_each_model_client_has_the_protocols_signatures(implementation):
    assert drift(ModelClient, implementation) == []


def test_a_drifted_signature_is_named():
    class Drifted:  # structured as the oracle had it before request_schema was added
        async def ensure_models(self, models): ...

        def context_window(self, model: str, configured: int) -> int: ...

        async def structured(self, *, role: str, model: str, messages: list[dict[str, str]], schema, num_ctx: int,
                             max_output_tokens: int, temperature: float = 0.2, seed: int | None = None,
                             parse=None, constrain: bool = True): ...

    found = drift(RoleModel, Drifted)

    assert "Drifted has no counter" in found and "Drifted has no count_prompt" in found
    assert "Drifted.context_window is not async" in found
    assert any(line.startswith("Drifted.structured(") for line in found)
    assert any(line.startswith("Drifted.ensure_models(") for line in found)  # no annotation on `models`
