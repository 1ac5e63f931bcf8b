from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def media_in_tmp(settings: Any, tmp_path: Path, empty_layer: None) -> Path:
    """Media, originals and resumable uploads' bytes under the test's own folder, and an
    empty channel layer."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ORIGINALS_ROOT = tmp_path / "originals"
    settings.UPLOAD_PARTIALS_ROOT = tmp_path / "partials"
    return Path(settings.MEDIA_ROOT)
