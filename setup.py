"""Builds the kron_attn extension: the CPU kernel always, the CUDA kernel when the toolkit allows.

Install as PyTorch extensions are installed: torch first, then
    pip install --no-build-isolation .
Environment switches:
    KRON_ATTN_CUDA=0/1     force the CUDA kernel off/on (default: on when torch is a CUDA build
                           and nvcc is found; a GPU is never needed to build)
    TORCH_CUDA_ARCH_LIST   CUDA architectures (default "8.0;9.0")
    DEBUG=1                -O0 -g
"""

import glob
import os
import platform
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils import cpp_extension
except ImportError:
    sys.exit("kron_attn: PyTorch is not installed. Install torch first, then: pip install --no-build-isolation .")

ROOT = os.path.dirname(os.path.abspath(__file__))
DEBUG = os.environ.get("DEBUG", "0") == "1"


def want_cuda() -> bool:
    forced = os.environ.get("KRON_ATTN_CUDA")
    if forced not in (None, "", "0", "1"):
        sys.exit(f"kron_attn: KRON_ATTN_CUDA must be 0 or 1, got {forced!r}")
    toolkit = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    if forced == "1" and not toolkit:
        sys.exit(
            "kron_attn: KRON_ATTN_CUDA=1 but "
            + ("torch is a CPU-only build" if torch.version.cuda is None else "nvcc was not found (set CUDA_HOME)")
        )
    return toolkit if forced in (None, "") else forced == "1"


def sources(with_cuda: bool) -> list[str]:
    srcs = [
        "csrc/kron_attn.cpp",
        "csrc/python_module.cpp",
        "csrc/schedule_op.cpp",
        "csrc/cpu/attention_cpu.cpp",
        "csrc/cpu/kernel_generic.cpp",
    ]
    if platform.machine().lower() in ("x86_64", "amd64"):
        srcs += ["csrc/cpu/kernel_avx2.cpp", "csrc/cpu/kernel_avx512.cpp"]
    if with_cuda:
        # Host-side op wrappers (.cpp, host compiler) and one .cu per (direction, head dim).
        srcs += sorted(glob.glob("csrc/cuda/*.cpp")) + sorted(glob.glob("csrc/cuda/**/*.cu", recursive=True))
    return srcs


def extension():
    with_cuda = want_cuda()
    opt = ["-O0", "-g"] if DEBUG else ["-O3"]
    # at::parallel_for is a header template over OpenMP: without -fopenmp it runs serially.
    cxx = opt + ["-fvisibility=hidden", "-fopenmp"]
    define_macros = []
    srcs = sources(with_cuda)
    has_cu = any(s.endswith(".cu") for s in srcs)
    if with_cuda and has_cu:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        # -Xptxas=-v prints registers, shared memory and spills per kernel (docs/cuda_kernel.md);
        # torch adds -std=c++20 itself.
        nvcc = opt + ["--expt-relaxed-constexpr", "-lineinfo", "--use_fast_math", "-Xptxas=-v"]
        define_macros.append(("KRON_ATTN_WITH_CUDA", None))
        return cpp_extension.CUDAExtension(
            "kron_attn._C",
            srcs,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc},
            extra_link_args=["-fopenmp"],
        )
    return cpp_extension.CppExtension(
        "kron_attn._C", srcs, define_macros=define_macros, extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"]
    )


setup(
    packages=find_packages(include=["kron_attn", "kron_attn.*", "claver", "claver.*"]),
    package_data={"claver": ["model_configs/*.json", "labels/*.csv", "prompts/data/*.json"]},
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
