"""Builds the kron_attn extensions: kron_attn._C (the CPU kernel always, the CUDA kernel when the
toolkit allows) and kron_attn._cuda_emu (the CUDA kernels compiled for the host and run by the SIMT
emulator: host compiler only, always built).

    pip install .                          # into an environment with or without torch
    pip install --no-build-isolation .     # the same, with the build tools already installed
The extensions are compiled against the torch of the environment installed into (see
tools/build_backend.py), and the package pins that torch (and the torchvision that goes with it).
Environment switches:
    KRON_ATTN_CUDA=0/1     force the CUDA kernel off/on (default: on when torch is a CUDA build
                           and nvcc is found; a GPU is never needed to build)
    TORCH_CUDA_ARCH_LIST   CUDA architectures (default: cuda_archs of csrc/build.txt)
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
sys.path.insert(0, ROOT)
from tools.build_config import build_list, cuda_archs, min_torch, nvcc_flags, optimisation  # noqa: E402

DEBUG = os.environ.get("DEBUG", "0") == "1"
TORCH = torch.__version__.split("+")[0]  # the release the extensions are compiled against
if tuple(int(x) for x in TORCH.split(".")[:2]) < min_torch():
    sys.exit(f"kron_attn: torch {torch.__version__} is too old; torch >= {'.'.join(map(str, min_torch()))} is needed")


def requirements() -> list[str]:
    """The torch this build is compiled against, exactly, with its torchvision (0.(minor + 15)
    for torch 2.x: open_clip and timm need one), and the rest."""
    major, minor = (int(x) for x in TORCH.split(".")[:2])
    torchvision = f"torchvision=={major - 2}.{minor + 15}.*" if major == 2 else "torchvision"
    rest = ["numpy", "open_clip_torch>=3.0", "timm", "safetensors", "tqdm", "av", "pyyaml", "matplotlib"]
    return [f"torch=={TORCH}", torchvision, *rest]


def write_build_info() -> None:
    """kron_attn/_build_info.py: what the extensions are compiled against, checked on import."""
    with open(os.path.join(ROOT, "kron_attn", "_build_info.py"), "w") as f:
        f.write(
            "# Written by setup.py when the extensions are built; not in version control.\n"
            f"TORCH_VERSION = {torch.__version__!r}\n"
            f"SOURCE = {ROOT!r}\n"
        )


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
    srcs = build_list("library") + ["csrc/python_module.cpp"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        srcs += build_list("library_x86")
    if with_cuda:
        # Host-side op wrappers (.cpp, host compiler) and the .cu files (one per direction and head
        # dim under inst/, plus the image check).
        srcs += sorted(glob.glob("csrc/cuda/*.cpp")) + sorted(glob.glob("csrc/cuda/**/*.cu", recursive=True))
    return srcs


OPT = optimisation(DEBUG)
# at::parallel_for is a header template over OpenMP: without -fopenmp it runs serially. -g0 undoes
# the -g of Python's own compiler flags: debug information for torch's headers is most of the host
# objects' compile time and size.
CXX = OPT + ([] if DEBUG else ["-g0"]) + ["-fvisibility=hidden", "-fopenmp"]


def extension():
    with_cuda = want_cuda()
    cxx = list(CXX)
    define_macros = []
    srcs = sources(with_cuda)
    has_cu = any(s.endswith(".cu") for s in srcs)
    if with_cuda and has_cu:
        archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", cuda_archs())
        nvcc = nvcc_flags(DEBUG)
        define_macros.append(("KRON_ATTN_WITH_CUDA", None))
        # A C string literal (torch quotes each flag for the shell of the ninja build).
        define_macros.append(("KRON_ATTN_CUDA_ARCHS", '"' + archs + '"'))
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


EMULATOR = "kron_attn._cuda_emu"


def emulator():
    return cpp_extension.CppExtension(
        EMULATOR,
        build_list("emulator") + ["csrc/cuda_emu/python_module.cpp"],
        include_dirs=[os.path.join(ROOT, "csrc/cuda_emu/include")],  # stand-ins for the CUDA headers
        define_macros=[("KRON_ATTN_EMULATE", None)],
        extra_compile_args={"cxx": list(CXX)},
        extra_link_args=["-fopenmp"],
    )


class BuildExtension(cpp_extension.BuildExtension):
    """torch's build, plus the emulated kernels compiled with their own flags (csrc/build.txt)."""

    def build_extension(self, ext):
        if ext.name == EMULATOR:
            flags = [f for f in ext.extra_compile_args["cxx"] if f not in OPT] + build_list("emulated_flags")
            ext.extra_objects = self.compiler.compile(
                build_list("emulated"),
                output_dir=os.path.join(self.build_temp, "emulated"),
                macros=ext.define_macros,
                include_dirs=ext.include_dirs,
                extra_postargs={"cxx": flags},
            )
        super().build_extension(ext)


write_build_info()
setup(
    packages=find_packages(include=["kron_attn", "kron_attn.*", "claver", "claver.*"]),
    install_requires=requirements(),
    package_data={"claver": ["model_configs/*.json", "recipes/*.yaml", "labels/*.csv", "prompts/data/*.json"]},
    ext_modules=[extension(), emulator()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
