"""The admin API's OpenAPI document, built from the same pydantic models that validate its requests.

`Operation` describes one endpoint (method, path, request and response models); `openapi_schema`
renders a list of them, every one behind the bearer token and answering problems as `Problem`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


class Problem(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: Endpoint
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    many: bool = False  # the response is a list of `response`
    other_statuses: dict[int, str] = field(default_factory=dict)  # e.g. {201: "opened"}: same model, another outcome


def openapi_schema(
    operations: list[Operation], *, title: str, extra_models: Sequence[type[BaseModel]] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`; `extra_models` are listed among the schemas too."""
    models: list[type[BaseModel]] = [Problem, *extra_models]
    for op in operations:
        models += [m for m in (op.body, op.response) if m is not None]
    unique = list(dict.fromkeys(models))
    _, defs = models_json_schema([(m, "validation") for m in unique], ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(re.sub(r"{(\w+):\w+}", r"{\1}", op.path), {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(op: Operation) -> dict[str, Any]:
    content = {"type": "array", "items": _ref(op.response)} if op.many else _ref(op.response)
    problem = {"application/json": {"schema": _ref(Problem)}}
    spec: dict[str, Any] = {
        "summary": (op.endpoint.__doc__ or "").strip().splitlines()[0],
        "operationId": op.endpoint.__name__,
        "security": [{"bearer": []}],
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                       for p in re.findall(r"{(\w+)(?::\w+)?}", op.path)],
        "responses": {
            str(op.status): {"description": "OK", "content": {"application/json": {"schema": content}}},
            "401": {"description": "no or wrong bearer token", "content": problem},
            "403": {"description": "a capability flag refuses it; `detail` says which", "content": problem},
            "404": {"description": "unknown, or the admin API is off", "content": problem},
            "422": {"description": "invalid request", "content": problem},
        },
    }
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    for status, description in op.other_statuses.items():
        spec["responses"][str(status)] = {"description": description,
                                          "content": {"application/json": {"schema": content}}}
    return spec
