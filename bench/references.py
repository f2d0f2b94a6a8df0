"""Reference apps served like Tenantry, so every row can be read as a ratio of them."""

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _hello(_: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


starlette_app = Starlette(routes=[Route("/", _hello)])

fastapi_app = FastAPI()


@fastapi_app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
