// The CPU kernel compiled for AVX-512.
// Everything that other translation units also compile is included before the target switch,
// so no inline function with AVX-512 code can be chosen by the linker for them.
#include <stdint.h>
#include <stdlib.h>

#include <new>
#include <type_traits>

#include <immintrin.h>

#include "../schedule.h"
#include "kernel.h"

#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi2")
#endif
#define KA_CPU_ISA 2
#define KA_ISA_NS avx512
#include "kernel_impl.h"

KA_DEFINE_KERNELS(kernels_avx512, "AVX-512")
