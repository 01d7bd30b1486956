// The dynamic shared memory of the emulated kernels (their `extern __shared__ smem[]`) with a
// guard on either side. Compiled with the kernels' flags (setup.py, CMakeLists.txt), among them
// -fno-toplevel-reorder, which keeps the three arrays in this order.
#include "simt.h"

KRON_ATTN_EMU_DYNAMIC_SHARED(kron_attn::cuda, smem)
