"""/api/datasets: the dataset kinds and their parameters."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.responses import StrictJSONResponse
from app.api.schemas import DatasetList
from app.nn.datasets import dataset_catalog

router = APIRouter(tags=["datasets"])


@router.get("/datasets", response_model=DatasetList, summary="Dataset kinds and their parameters")
async def list_datasets() -> Response:
    return StrictJSONResponse({"datasets": dataset_catalog()})
