"""The shared image conventions: dtype round trips and device-aware chunking."""

from __future__ import annotations

import pytest
import torch

from augrobust._tensor import cache_chunk, from_float, to_float


def test_uint8_round_trip_is_exact_for_every_level():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(from_float(to_float(levels), levels), levels)


def test_uint8_results_are_floored_like_imagecorruptions():
    like = torch.zeros(1, 1, 1, 3, dtype=torch.uint8)
    y = torch.tensor([0.999 / 255, 254.99 / 255, 1.2]).view(1, 1, 1, 3)
    assert from_float(y, like).flatten().tolist() == [0, 254, 255]


def test_cpu_kernels_chunk_for_the_cache_and_accelerators_take_the_batch_whole():
    assert cache_chunk(torch.device("cpu"), 1 << 20, 3 * 224 * 224) == 6
    assert cache_chunk(torch.device("cpu"), 1 << 20, 1 << 22) == 1
    assert cache_chunk(torch.device("cuda"), 1 << 20, 3 * 224 * 224) >= 1 << 40
    assert cache_chunk(torch.device("mps"), 1 << 20, 1) >= 1 << 40


@pytest.mark.parametrize("name", ["brightness", "contrast", "fog", "frost", "snow", "spatter", "saturate", "jpeg_compression"])
def test_a_grey_result_keeps_every_grey_level_when_converted_back_to_one_channel(name):
    # Every grey level, as a 1-channel uint8 image: corrupting it as RGB (replicated) and converting back with
    # luma must give the RGB result's own value wherever that result is grey, never one level lower.
    import augrobust

    grey = torch.arange(256, dtype=torch.uint8).repeat(64, 1)[None]  # (1, 64, 256): each column one level
    g = torch.Generator().manual_seed(0)
    one = augrobust.corrupt(grey, name, 3, generator=g)
    g = torch.Generator().manual_seed(0)
    rgb = augrobust.corrupt(grey.expand(3, -1, -1), name, 3, generator=g)
    is_grey = (rgb[0] == rgb[1]) & (rgb[1] == rgb[2])
    assert is_grey.any()
    assert torch.equal(one[0][is_grey], rgb[0][is_grey])
