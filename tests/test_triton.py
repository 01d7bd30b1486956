"""The Triton backend against the float64 reference (on the CPU: Triton's interpreter), on the
cases of tests/harness.py it covers."""

import pytest
import torch
from harness import cases_for, check, device_of

import kron_attn
from kron_attn import backends

pytestmark = pytest.mark.skipif(
    bool(backends.get("triton").why_unavailable()), reason=backends.get("triton").why_unavailable()
)


@pytest.mark.parametrize("case", cases_for("triton"), ids=str)
def test_matches_reference(case):
    check("triton", case)


def test_listed_and_chosen():
    assert "triton" in kron_attn.available_backends()
    q = torch.randn(1, 1, 4, 16, dtype=torch.float64, device=device_of("triton"))
    with pytest.raises(TypeError, match="triton backend supports"):
        kron_attn.attention(q, q, q, frames=2, backend="triton")
