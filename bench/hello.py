"""The bare stack the platform is measured against: FastAPI on the same uvicorn, one
handler of each kind, no database, no template, no middleware."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/sync", response_class=PlainTextResponse)
def hello_sync() -> str:
    return "hello"


@app.get("/async", response_class=PlainTextResponse)
async def hello_async() -> str:
    return "hello"
