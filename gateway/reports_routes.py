# REST edge of the reports (/api/reports/...): counts, failed scans, settlement, each as JSON or CSV.
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reports"])
